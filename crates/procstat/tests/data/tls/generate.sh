#!/bin/sh
# Regenerates the test TLS material (valid for 100 years): a CA, a kubelet serving
# certificate for 127.0.0.1/localhost signed by it, and an unrelated CA that must be refused.
set -eu
cd "$(dirname "$0")"
days=36500
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
  -subj "/CN=logtide test kubelet CA" -keyout ca.key -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
  -subj "/CN=logtide unrelated CA" -keyout other-ca.key -out other-ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
rm other-ca.key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out kubelet.key
openssl req -new -key kubelet.key -subj "/CN=test-node" -out kubelet.csr
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' > kubelet.ext
openssl x509 -req -in kubelet.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $days \
  -extfile kubelet.ext -out kubelet.pem
rm -f kubelet.csr kubelet.ext ca.key ca.srl
