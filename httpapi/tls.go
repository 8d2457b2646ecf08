package httpapi

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// TLSConfig returns a server TLS configuration that serves the certificate
// chain and private key in these PEM files. It reads them again when either
// changes, so that a renewed certificate is served from the next handshake
// without a restart (a restart of ProcMan stops every job). While a changed
// pair does not load (the certificate written, the key not yet), the pair
// loaded last is served and the error logged.
func TLSConfig(certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &keyPair{certFile: certFile, keyFile: keyFile, log: log}
	if err := k.reload(); err != nil {
		return nil, err
	}
	return &tls.Config{GetCertificate: k.get}, nil
}

// CertificateNames are the DNS names of the certificate cfg serves now.
func CertificateNames(cfg *tls.Config) []string {
	if cfg == nil || cfg.GetCertificate == nil {
		return nil
	}
	crt, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || crt == nil || crt.Leaf == nil {
		return nil
	}
	return crt.Leaf.DNSNames
}

// keyPair is a certificate and key read from files, and read again when
// they change.
type keyPair struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	current *tls.Certificate
	stamp   string // of the files when last read, loaded or not
}

func (k *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	stamp := fileStamp(k.certFile) + fileStamp(k.keyFile)
	k.mu.Lock()
	defer k.mu.Unlock()
	if stamp != k.stamp {
		k.stamp = stamp
		if err := k.loadLocked(); err != nil {
			k.log.Warn("TLS certificate changed but does not load; serving the previous one", "err", err)
		} else {
			k.log.Info("TLS certificate reloaded", "cert", k.certFile, "names", k.current.Leaf.DNSNames)
		}
	}
	return k.current, nil
}

func (k *keyPair) reload() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stamp = fileStamp(k.certFile) + fileStamp(k.keyFile)
	return k.loadLocked()
}

func (k *keyPair) loadLocked() error {
	crt, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", k.certFile, k.keyFile, err)
	}
	k.current = &crt
	return nil
}

// fileStamp tells one version of a file from another: a renewal rewrites it
// in place or renames a new one over it.
func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing;"
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d/%d/%d;", fi.ModTime().UnixNano(), fi.Size(), ino)
}
