package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// CA signs the certificates of TLS tests, so that clients verify them
// rather than skip verification.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	Pool *x509.CertPool // holds Cert, for clients' RootCAs or servers' ClientCAs
	next atomic.Int64
}

// Issued is a certificate and its key.
type Issued struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a CA valid from an hour ago for two hours.
func NewCA(t testing.TB) *CA {
	t.Helper()
	tmpl := template("meridian test CA", 1)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign
	is := sign(t, tmpl, nil, nil)
	ca := &CA{Cert: is.Cert, Key: is.Key, Pool: x509.NewCertPool()}
	ca.Pool.AddCert(is.Cert)
	ca.next.Store(1)
	return ca
}

// Server issues a server certificate for names (the first is also the
// common name).
func (ca *CA) Server(t testing.TB, names ...string) Issued {
	t.Helper()
	tmpl := template(names[0], ca.next.Add(1))
	tmpl.DNSNames = names
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	return sign(t, tmpl, ca.Cert, ca.Key)
}

// Client issues a client certificate for mutual TLS.
func (ca *CA) Client(t testing.TB, name string) Issued {
	t.Helper()
	tmpl := template(name, ca.next.Add(1))
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return sign(t, tmpl, ca.Cert, ca.Key)
}

// SelfSigned returns a self-signed certificate for names, for TLS servers
// whose clients do not verify (backends behind a passthrough).
func SelfSigned(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	tmpl := template(names[0], 1)
	tmpl.DNSNames = names
	return sign(t, tmpl, nil, nil).TLS()
}

// TLS returns the pair for a tls.Config.
func (is Issued) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{is.Cert.Raw}, PrivateKey: is.Key, Leaf: is.Cert}
}

// CertPEM is the certificate in PEM.
func (is Issued) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.Cert.Raw})
}

// KeyPEM is the key in PEM (SEC 1).
func (is Issued) KeyPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(is.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// WriteFiles writes the key, then the certificate, each whole through a
// rename, so that a server polling the files never reads half of one or a
// pair that does not match for long.
func (is Issued) WriteFiles(t testing.TB, certFile, keyFile string) Issued {
	t.Helper()
	WriteAtomic(t, keyFile, is.KeyPEM(t))
	WriteAtomic(t, certFile, is.CertPEM())
	return is
}

// Serial is the certificate's serial number, which tells a test which of
// several certificates a server presented.
func (is Issued) Serial() int64 { return is.Cert.SerialNumber.Int64() }

// CertPEM is the CA's certificate in PEM, for servers' and clients' CA files.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// WriteAtomic writes b to path through a temporary file and a rename.
func WriteAtomic(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func template(name string, serial int64) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
}

// sign makes a key and signs tmpl with parent's key, or with the new key
// itself when parent is nil.
func sign(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) Issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return Issued{Cert: cert, Key: key}
}
