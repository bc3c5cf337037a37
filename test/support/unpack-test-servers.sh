#!/usr/bin/env bash
# Unpacks Debian's Cyrus IMAP, Postfix and saslpasswd2 into MAILROOM_TEST_SERVERS_DIR for the
# interop tests (test/support/cyrus.ts, postfix.ts), without installing them: cyrus-imapd conflicts
# with dovecot-imapd, which the other tests need, postfix would become the machine's MTA, and
# either would start a system service. The libraries they link against are ordinary packages
# and are installed (never upgrading what the machine has). Run as root; idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
dest="${MAILROOM_TEST_SERVERS_DIR:-/opt/mailroom-test-servers}"
unpacked=(cyrus-common cyrus-imapd sasl2-bin postfix)
if [ -x "$dest/usr/lib/cyrus/bin/master" ] && [ -x "$dest/usr/sbin/saslpasswd2" ] && [ -x "$dest/usr/lib/postfix/sbin/master" ]; then
  exit 0
fi
apt-get update -qq
# The libraries the unpacked binaries need (Depends: lib…), installed the ordinary way.
mapfile -t libs < <(apt-cache depends "${unpacked[@]}" | awk '/Depends: lib/ { print $2 }' | sort -u)
apt-get install -y -qq --no-install-recommends --no-upgrade "${libs[@]}" >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
(cd "$work" && apt-get download -qq "${unpacked[@]}" 2>/dev/null)
mkdir -p "$dest"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$dest"; done
