#!/bin/sh
# Triton's entry point in the image and the chart. The python-backend shared-memory regions hold recent
# photos: a crashed server leaves them in /dev/shm (an emptyDir that outlives a container restart), so
# they are removed before every start. The backend creates them 0644 whatever the umask; in the chart
# /dev/shm is mounted in this container only, which runs as one user. umask 077 covers the other files
# the server writes.
set -eu
umask 077
find "${SHM_DIR:-/dev/shm}" -maxdepth 1 -name 'triton_python_backend_shm_region_*' -type f -delete 2>/dev/null || true
exec tritonserver "$@"
