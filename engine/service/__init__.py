"""The service around the compute: protocol (commands and events), the job table and job context, the engine
server."""
