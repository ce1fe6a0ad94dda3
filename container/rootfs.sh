#!/bin/sh
# Gathers what framerr-backup's FROM-scratch image holds, from a Debian
# system's own files, into ROOTFS (which already holds
# usr/local/bin/framerr-backup):
#   - the C runtime the binary links (whatever `ldd` lists, at the same paths);
#   - CA certificates (S3 over https, ntfy);
#   - zoneinfo (the schedule's TZ), without the leap-second `right/` copies;
#   - /etc/passwd and /etc/group with root and the default user;
#   - /config and /tmp.
# Used by the root Dockerfile (in a debian stage) and by `cargo xtask image`
# (on the build machine), so both images hold the same files.
set -eu
ROOTFS=$1
BIN="$ROOTFS/usr/local/bin/framerr-backup"
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

for lib in $(ldd "$BIN" | awk '/=>/ { print $3 } /^[[:space:]]*\/[^ ]*ld-linux/ { print $1 }'); do
    real=$(readlink -f "$lib")
    mkdir -p "$ROOTFS$(dirname "$lib")"
    cp "$real" "$ROOTFS$lib"
done

mkdir -p "$ROOTFS/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"

mkdir -p "$ROOTFS/usr/share/zoneinfo"
( cd /usr/share/zoneinfo && tar --exclude=./right --exclude=./posix -cf - . ) | ( cd "$ROOTFS/usr/share/zoneinfo" && tar -xf - )
ln -sf /usr/share/zoneinfo/UTC "$ROOTFS/etc/localtime"

cat > "$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/config:/nonexistent
framerr:x:1000:1000:framerr-backup:/config:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
PASSWD
cat > "$ROOTFS/etc/group" <<'GROUP'
root:x:0:
framerr:x:1000:
users:x:100:
nogroup:x:65534:
GROUP

mkdir -p "$ROOTFS/config" "$ROOTFS/tmp"
chmod 1777 "$ROOTFS/tmp"
