#!/bin/sh
# Installed as xdg-open, x-www-browser and www-browser in the agent image. Inside the
# sandbox there is no browser: hand the URL to the launcher, which opens it in the
# user's browser on the host when it is allowed (and carries a login's redirect to
# localhost:PORT back into the sandbox), and prints it otherwise.
set -eu
if [ "$#" -ne 1 ]; then
    echo "usage: $0 URL" >&2
    exit 2
fi
if [ -z "${AGENT_SANDBOX_BROWSER:-}" ] || [ ! -w "$AGENT_SANDBOX_BROWSER" ]; then
    echo "no browser in the sandbox; open this URL on your host: $1" >&2
    exit 1
fi
printf '%s\n' "$1" >>"$AGENT_SANDBOX_BROWSER"
echo "handed to the browser on your host: $1" >&2
