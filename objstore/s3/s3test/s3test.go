package s3test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/tideops/tide/objstore/s3"
)

// Server is a running S3 server.
type Server struct {
	Name     string
	Endpoint string // https://127.0.0.1:port
	// CAFile is the PEM file of the server's certificate.
	CAFile string
	// HTTPClient trusts the server's certificate.
	HTTPClient *http.Client
	Access     string
	Secret     string
}

// Options returns the objstore/s3 options that reach the server.
func (s Server) Options() s3.Options {
	return s3.Options{
		Region:      "us-east-1",
		Endpoint:    s.Endpoint,
		PathStyle:   true,
		Credentials: credentials.NewStaticCredentialsProvider(s.Access, s.Secret, ""),
		HTTPClient:  s.HTTPClient,
	}
}

// Client returns an objstore/s3 client for the server.
func (s Server) Client(t testing.TB) *s3.Client {
	t.Helper()
	c, err := s3.New(context.Background(), s.Options())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SDK returns a bare SDK client for the server, for what tests check
// behind the store's back (multipart uploads left open, buckets).
func (s Server) SDK() *s3sdk.Client {
	o := s.Options()
	return s3sdk.New(s3sdk.Options{
		Region: o.Region, BaseEndpoint: aws.String(o.Endpoint), UsePathStyle: true,
		Credentials: o.Credentials, HTTPClient: o.HTTPClient,
	})
}

// CreateBucket makes a bucket with the SDK.
func (s Server) CreateBucket(t testing.TB, bucket string) {
	t.Helper()
	if _, err := s.SDK().CreateBucket(context.Background(), &s3sdk.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("creating bucket %s on %s: %v", bucket, s.Name, err)
	}
}

// StartFake starts gofakes3 over TLS in the test process.
func StartFake(t testing.TB, buckets ...string) Server {
	t.Helper()
	fake := gofakes3.New(s3mem.New())
	ts := httptest.NewTLSServer(fake.Server())
	t.Cleanup(ts.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	s := Server{Name: "gofakes3", Endpoint: ts.URL, CAFile: ca, HTTPClient: ts.Client(), Access: "AKIDTEST", Secret: "secret"}
	for _, b := range buckets {
		s.CreateBucket(t, b)
	}
	return s
}

// VersityPath is where versitygw is looked for: on PATH, else in
// $GOPATH/bin (scripts/install-test-deps puts it there).
func VersityPath() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw not on PATH nor in %s: %w", filepath.Dir(p), err)
	}
	return p, nil
}

// StartVersity starts versitygw (posix backend on a temporary directory)
// on a loopback port with a certificate made for the test. It skips the
// test when versitygw is not installed, except under CI (CI=true), where
// it fails.
func StartVersity(t testing.TB, buckets ...string) Server {
	t.Helper()
	bin, err := VersityPath()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("versitygw missing under CI (scripts/install-test-deps installs it): %v", err)
		}
		t.Skipf("versitygw not installed: %v", err)
	}
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--access", "AKIDTEST", "--secret", "versity-secret", "--port", addr,
		"--cert", certFile, "--key", keyFile, "posix", data)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	logs := func() string { b, _ := os.ReadFile(filepath.Join(dir, "versitygw.log")); return string(b) }
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("versitygw exited: %s", logs())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw not listening on %s: %v\n%s", addr, err, logs())
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(client.CloseIdleConnections)
	s := Server{Name: "versitygw", Endpoint: "https://" + addr, CAFile: certFile, HTTPClient: client,
		Access: "AKIDTEST", Secret: "versity-secret"}
	for _, b := range buckets {
		s.CreateBucket(t, b)
	}
	return s
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tide test s3"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
