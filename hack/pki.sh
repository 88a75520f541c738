# TLS material and kubeconfigs for the local cluster. Sourced by cluster-up.sh.
# Every identity gets its own certificate so that RBAC and the Node authorizer apply as
# they would in a real cluster. Files are made once and reused by later starts.
# shellcheck shell=bash

PKI_DIR=$STATE_DIR/pki

# sign_cert NAME SUBJECT EXTENSIONS: an ECDSA P-256 key and a certificate signed by the CA.
sign_cert() {
	local name=$1 subject=$2 ext=$3
	[ -f "$PKI_DIR/$name.crt" ] && return 0
	openssl ecparam -name prime256v1 -genkey -noout -out "$PKI_DIR/$name.key" 2>/dev/null
	openssl req -new -key "$PKI_DIR/$name.key" -subj "$subject" -out "$PKI_DIR/$name.csr" 2>/dev/null
	printf '%s\n' "$ext" >"$PKI_DIR/$name.ext"
	openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
		-CAcreateserial -days 3650 -sha256 -extfile "$PKI_DIR/$name.ext" -out "$PKI_DIR/$name.crt" 2>/dev/null
	rm -f "$PKI_DIR/$name.csr" "$PKI_DIR/$name.ext"
}

client_cert() { # NAME CN [ORG]
	local subject="/CN=$2"; [ -n "${3:-}" ] && subject="/O=$3$subject"
	sign_cert "$1" "$subject" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
}

server_cert() { # NAME CN SANS
	sign_cert "$1" "/CN=$2" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$3"
}

# write_kubeconfig FILE CERT_NAME: a kubeconfig for the identity in $PKI_DIR/CERT_NAME.{crt,key}.
write_kubeconfig() {
	local file=$1 name=$2
	[ -f "$file" ] && return 0
	cat >"$file.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: mediaflow-local
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI_DIR/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$PKI_DIR/$name.crt")
    client-key-data: $(base64 -w0 "$PKI_DIR/$name.key")
contexts:
- name: mediaflow-local
  context: {cluster: mediaflow-local, user: $name}
current-context: mediaflow-local
KUBECONFIG
	chmod 600 "$file.tmp" && mv "$file.tmp" "$file"
}

make_pki() {
	mkdir -p "$PKI_DIR" && chmod 700 "$PKI_DIR"
	if [ ! -f "$PKI_DIR/ca.crt" ]; then
		log "generating the cluster CA and certificates in $PKI_DIR"
		openssl ecparam -name prime256v1 -genkey -noout -out "$PKI_DIR/ca.key" 2>/dev/null
		openssl req -x509 -new -key "$PKI_DIR/ca.key" -subj "/CN=mediaflow-local-ca" -days 3650 -sha256 \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
			-out "$PKI_DIR/ca.crt" 2>/dev/null
	fi
	[ -f "$PKI_DIR/sa.key" ] || {
		openssl ecparam -name prime256v1 -genkey -noout -out "$PKI_DIR/sa.key" 2>/dev/null
		openssl ec -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub" 2>/dev/null
	}
	server_cert apiserver kube-apiserver "IP:$NODE_IP,IP:127.0.0.1,IP:$KUBERNETES_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
	server_cert kubelet-serving "system:node:$NODE_NAME" "IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME"
	client_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
	client_cert admin mediaflow-admin system:masters
	client_cert controller-manager system:kube-controller-manager
	client_cert scheduler system:kube-scheduler
	client_cert kubelet "system:node:$NODE_NAME" system:nodes
	client_cert kube-proxy system:kube-proxy
	client_cert coredns system:coredns
	for name in admin controller-manager scheduler kubelet kube-proxy coredns; do
		write_kubeconfig "$PKI_DIR/$name.kubeconfig" "$name"
	done
}
