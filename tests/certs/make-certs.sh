#!/usr/bin/env bash
# Make the certificates the TLS tests need, at test time (none with an
# expiry is committed). usage: make-certs.sh DIR
#   ca.pem ca.key            a test CA
#   server.pem server.key    "localhost" (+ 127.0.0.1), signed by the CA
#   wrongname.pem/.key       "wrong.example", signed by the CA
#   expired.pem/.key         "localhost", signed by the CA, expired in 2020
#   selfsigned.pem/.key      "localhost", self-signed (not from the CA)
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -f .done ] && exit 0

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=lsmtp test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem

leaf() { # name cn san
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" >"$1.ext"
}

leaf server localhost "DNS:localhost,IP:127.0.0.1"
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
  -sha256 -extfile server.ext -out server.pem 2>/dev/null

leaf wrongname wrong.example "DNS:wrong.example"
openssl x509 -req -in wrongname.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
  -sha256 -extfile wrongname.ext -out wrongname.pem 2>/dev/null

# An expired one needs explicit dates: openssl ca takes them.
leaf expired localhost "DNS:localhost"
mkdir -p ca-db && : >ca-db/index.txt && echo 1000 >ca-db/serial
cat >ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
CNF
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
  -startdate 20200101000000Z -enddate 20200201000000Z -extfile expired.ext \
  -out expired.pem -notext 2>/dev/null

key selfsigned.key
openssl req -x509 -new -key selfsigned.key -sha256 -days 3650 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost" -out selfsigned.pem

rm -f ./*.csr ./*.ext
touch .done
