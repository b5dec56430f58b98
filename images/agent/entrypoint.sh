#!/bin/sh
# Entrypoint of the agent image. The container runs as the host user's UID, which the
# image does not know; tools that look the user up (getpwuid) then fail. Register it in
# a private copy of /etc/passwd through nss_wrapper (no world-writable /etc/passwd),
# then run the command: the agent by default, `sh`/`bash` for a shell, or anything else.
set -eu

uid="$(id -u)"
gid="$(id -g)"
if ! getent passwd "$uid" >/dev/null 2>&1; then
    lib="$(find /usr/lib -name libnss_wrapper.so -print -quit 2>/dev/null || true)"
    if [ -n "$lib" ]; then
        dir="$(mktemp -d)"
        cp /etc/passwd "$dir/passwd"
        cp /etc/group "$dir/group"
        printf 'piuser:x:%s:%s:pi user:%s:/bin/bash\n' "$uid" "$gid" "${HOME:-/home/piuser}" >>"$dir/passwd"
        getent group "$gid" >/dev/null 2>&1 || printf 'piuser:x:%s:\n' "$gid" >>"$dir/group"
        export LD_PRELOAD="$lib" NSS_WRAPPER_PASSWD="$dir/passwd" NSS_WRAPPER_GROUP="$dir/group"
    fi
fi

if [ "$#" -eq 0 ]; then
    set -- pi
fi
exec "$@"
