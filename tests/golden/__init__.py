"""Golden files and builders shared by the config, policy, routing and trace tests."""
