"""The command line, a face: parses arguments, asks its questions on the caller's terminal and
renders what the layers below return.  May use every layer (agent client, ops, venues,
net, core), the sandbox and, for the dashboard command, tui; nothing imports it."""
