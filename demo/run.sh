#!/usr/bin/env bash
# The provguard demo: a throwaway PKI is checked and rendered into certificates.h, the firmware's
# credential table (app/src/credentials.c) is cross-compiled into a development image that embeds
# the credentials and a release image that does not, and the leak scan must flag the first and pass
# the second. Every step is the real tool; nothing is faked. Usage: demo/run.sh [OUT_DIR]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/demo}
mkdir -p "$out"
out=$(cd "$out" && pwd)
pki=$out/pki

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

rm -rf "$pki" "$out/dev" "$out/release"

step "1. A throwaway development PKI (EC P-256, files 0600)"
show provguard dev-pki "$pki" --broker-host localhost

step "2. Check the credentials as the modem and the broker will see them"
show provguard check --ca "$pki/ca.pem" --cert "$pki/client.pem" --key "$pki/client.key"

step "3. Render certificates.h (development builds only; missing directories are created)"
show provguard render --ca "$pki/ca.pem" --cert "$pki/client.pem" --key "$pki/client.key" \
	--sec-tag 24 -o "$out/dev/generated/certificates.h"

# The application's own credential table, built the way a Zephyr build compiles it; only the
# start-up code and memory map (demo/image) stand in for Zephyr.
build_image() { # dir, extra cflags...
	local dir=$1
	shift
	mkdir -p "$dir"
	show arm-none-eabi-gcc -mcpu=cortex-m33 -mthumb -Os -g -std=c11 -Wall -Wextra -Werror \
		-ffreestanding -nostdlib -I "$root/app/src" -I "$root/tests/unit/fakes/include" "$@" \
		-T "$root/demo/image/link.ld" -o "$dir/zephyr.elf" \
		"$root/demo/image/main.c" "$root/app/src/credentials.c"
	arm-none-eabi-objcopy -O ihex "$dir/zephyr.elf" "$dir/zephyr.hex"
	arm-none-eabi-objcopy -O binary "$dir/zephyr.elf" "$dir/zephyr.bin"
}

step "4. Development image: CONFIG_PROVISION_CERTIFICATES=y embeds the credentials"
build_image "$out/dev" -DCONFIG_PROVISION_CERTIFICATES=1 -DCONFIG_MQTT_TLS_SEC_TAG=24 \
	-I "$out/dev/generated"

step "5. Release image: provisioning off, no certificates.h"
build_image "$out/release"

step "6. Scan the development image: the key must be found (exit 1)"
set +e
show provguard scan "$out/dev/zephyr.elf" "$out/dev/zephyr.hex" \
	--key "$pki/client.key" --cert "$pki/client.pem"
dev_rc=$?
step "7. Scan the release image: it must be clean (exit 0)"
show provguard scan "$out/release/zephyr.elf" "$out/release/zephyr.hex" \
	--key "$pki/client.key" --cert "$pki/client.pem"
release_rc=$?
set -e

step "8. Probe a local Mosquitto (TLS 1.2, client certificate required) as the device would"
broker=$out/broker
mkdir -p "$broker"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$broker/mosquitto.conf" <<CONF
user root
persistence false
log_dest file $broker/mosquitto.log
listener $port 127.0.0.1
cafile $pki/ca.pem
certfile $pki/server.pem
keyfile $pki/server.key
require_certificate true
use_identity_as_username true
allow_anonymous false
tls_version tlsv1.2
CONF
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosquitto" -c "$broker/mosquitto.conf" 2>>"$broker/mosquitto.stderr" &
broker_pid=$!
trap 'kill $broker_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do # up to 10 s for the broker to listen
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done
set +e
show provguard probe "localhost:$port" --ca "$pki/ca.pem" --cert "$pki/client.pem" \
	--key "$pki/client.key"
probe_rc=$?
set -e
kill $broker_pid 2>/dev/null || true

step "Result"
if [[ $dev_rc -eq 1 && $release_rc -eq 0 && $probe_rc -eq 0 ]]; then
	echo "development image: key found (exit 1); release image: clean (exit 0);"
	echo "broker probe: accepted (exit 0). The gate works."
	echo
	echo "provguard is installed in $root/.venv, not on your PATH. To run it yourself:"
	echo "  . $root/.venv/bin/activate    # in this shell ('deactivate' leaves it)"
	echo "  pipx install $root            # or: the provguard command in every shell"
else
	echo "unexpected: development scan exited $dev_rc (want 1), release scan $release_rc" \
		"(want 0), probe $probe_rc (want 0)" >&2
	exit 1
fi
