#!/bin/sh
# Regenerates the test PEM files (valid for 100 years): two unrelated CA certificates, a
# bundle holding both, a file holding only a private key, and a certificate cut short.
set -eu
cd "$(dirname "$0")"
days=36500
for n in 1 2; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
    -subj "/CN=logtide test CA $n" -keyout ca-$n.key -out ca-$n.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
done
cat ca-1.pem ca-2.pem > two-cas.pem
mv ca-1.key key-only.pem
chmod 644 key-only.pem
rm ca-2.key
# The END line is missing.
sed '$d' ca-1.pem > truncated.pem
