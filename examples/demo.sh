#!/usr/bin/env bash
# The main demo: build lsmtp, start smtp-receive on 127.0.0.1, send one
# message through it with smtp-send, and show the file it delivered into
# the Maildir. Installs what is missing first (Debian 12, root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev
bin=build/dev/bin

work=$(mktemp -d /tmp/lsmtp-demo.XXXXXX)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo
echo "== smtp-receive on 127.0.0.1:$port, delivering to $work/Maildir"
"$bin/smtp-receive" --listen "127.0.0.1:$port" --domain example.org \
  --maildir "$work/Maildir" --hostname mx.example.org -v 2>"$work/receive.log" &
receiver=$!
trap 'kill "$receiver" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

cat >"$work/message.txt" <<MSG
From: Alice <alice@example.com>
To: Bob <bob@example.org>
Subject: Hello from lsmtp

Hi Bob,

this message went from smtp-send to smtp-receive over SMTP on loopback.
.A line that starts with a dot arrives intact.
MSG

echo "== smtp-send"
if [ -x "$bin/smtp-send" ]; then
  "$bin/smtp-send" --server "127.0.0.1:$port" --from alice@example.com \
    --to bob@example.org --helo demo.example.com "$work/message.txt"
else
  echo "(smtp-send not built yet: sending with Python's smtplib instead)"
  /usr/bin/python3 - "$port" "$work/message.txt" <<'PY'
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.sendmail("alice@example.com", ["bob@example.org"], open(sys.argv[2], "rb").read())
PY
fi

kill -TERM "$receiver"
wait "$receiver" || true
trap - EXIT

echo
echo "== what the receiver said (-v)"
cat "$work/receive.log"
echo
file=$(find "$work/Maildir/bob/new" -type f | head -n 1)
echo "== delivered: $file"
cat "$file"
