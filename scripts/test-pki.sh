#!/bin/sh
# A throwaway PKI for the TLS tests (Swift and Python), made with the openssl command line.
# Usage: scripts/test-pki.sh DIR   — writes into DIR (created), every key EC P-256, PEM:
#   ca.{crt,key}            test CA                     other-ca.{crt,key}  an unrelated CA
#   server.{crt,key}        CN=rankd-test, SAN DNS:localhost, IP:127.0.0.1, IP:::1
#   server2.{crt,key}       the same names, another key and serial (rotation target)
#   server-expired.{crt,key}  the same names, expired on 2020-01-02
#   client.{crt,key}        CN=edge-client, SAN URI:spiffe://rankd.test/edge
#   publisher.{crt,key}     CN=snapshot-publisher, SAN URI:spiffe://rankd.test/publisher
#   client-other-ca.{crt,key}  CN=edge-client signed by other-ca
#   client-expired.{crt,key}   CN=edge-client, expired on 2020-01-02
set -eu
dir=${1:?usage: scripts/test-pki.sh DIR}
mkdir -p "$dir"
cd "$dir"

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

# make_ca NAME CN
make_ca() {
    newkey "$1"
    openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 30 -out "$1.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    mkdir -p "$1.db"
    : >"$1.db/index.txt"
    # Serials differ per run, so a rotated certificate is told apart by its serial.
    openssl rand -hex 8 >"$1.db/serial"
}

# make_leaf NAME CA CN SAN USAGE [START END]   (START/END as YYYYMMDDHHMMSSZ)
make_leaf() {
    newkey "$1"
    openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
        "$5" "$4" >"$1.ext"
    cat >"$1.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $2.db/index.txt
new_certs_dir = $2.db
serial = $2.db/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
CNF
    if [ $# -ge 7 ]; then dates="-startdate $6 -enddate $7"; else dates="-days 30"; fi
    # shellcheck disable=SC2086
    openssl ca -batch -notext -config "$1.cnf" -cert "$2.crt" -keyfile "$2.key" -in "$1.csr" -out "$1.crt" \
        -extfile "$1.ext" $dates 2>/dev/null
    rm -f "$1.csr" "$1.ext" "$1.cnf"
}

server_names="DNS:localhost,IP:127.0.0.1,IP:::1"
make_ca ca "rankd test CA"
make_ca other-ca "another CA"
make_leaf server ca rankd-test "$server_names" serverAuth
make_leaf server2 ca rankd-test "$server_names" serverAuth
make_leaf server-expired ca rankd-test "$server_names" serverAuth 20200101000000Z 20200102000000Z
make_leaf client ca edge-client "URI:spiffe://rankd.test/edge" clientAuth
make_leaf publisher ca snapshot-publisher "URI:spiffe://rankd.test/publisher" clientAuth
make_leaf client-other-ca other-ca edge-client "URI:spiffe://rankd.test/edge" clientAuth
make_leaf client-expired ca edge-client "URI:spiffe://rankd.test/edge" clientAuth 20200101000000Z 20200102000000Z
