"""Generated protobuf modules of extproc.admin.v1 (see scripts/gen_protos.py)."""
