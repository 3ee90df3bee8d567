"""The operator CLI: ``python -m cli <command>`` against a deployed stack or the local sandbox."""
