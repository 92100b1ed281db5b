"""The system's gRPC contracts, one folder for every service. The Python stubs are generated
next to each .proto by `make` (python -m grpc_tools.protoc) and are not committed."""
