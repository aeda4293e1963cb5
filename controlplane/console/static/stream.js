// The event bus as server-sent events (/console/events), read with fetch so that the bearer token can go
// in a header (EventSource cannot send one); reconnects after a second when the stream ends.
import { authHeaders, unauthorized } from "./util.js";

function dispatch(block, on) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) type = line.slice(7);
    else if (line.startsWith("data: ")) data.push(line.slice(6));
  }
  if (data.length) on(type, JSON.parse(data.join("\n")));
}

async function once(on) {
  const response = await fetch("/console/events", { headers: authHeaders(), cache: "no-store" });
  if (unauthorized(response) || !response.ok || !response.body) throw new Error(`event stream: ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      dispatch(buffer.slice(0, end), on);
      buffer = buffer.slice(end + 2);
    }
  }
}

// Calls on(type, data) for every event ("backlog", "live", "message"), down() when the stream is lost.
export async function follow(on, down) {
  for (;;) {
    try {
      await once(on);
    } catch (err) {
      void err;
    }
    down();
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
