//! The `agent-sandbox` launcher (built in the launcher issue).

fn main() {}
