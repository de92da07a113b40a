"""The quota admin service: gRPC API, its server and the command line."""
