"""Generated from proto/madoguchi/v1 by grpcio-tools and mypy-protobuf."""
