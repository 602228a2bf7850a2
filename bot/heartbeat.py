"""The heartbeat: the running bot rewrites ``DATA_DIR/heartbeat`` every ``HEARTBEAT_INTERVAL``
seconds and ``python -m bot healthcheck`` reads it. A module of its own, so that the health
check starts without loading aiogram."""

HEARTBEAT_FILE = "heartbeat"  # in DATA_DIR, touched while updates are being received
HEARTBEAT_INTERVAL = 30.0
