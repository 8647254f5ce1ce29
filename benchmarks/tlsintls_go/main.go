// The web server and the Go client stack of the TLS-in-TLS corpus
// (benchmarks/record_tlsintls.py). Standard library only.
//
//	tlsintls serve -addr :443 -cert C -key K        HTTP/1.1 and h2 over TLS 1.2/1.3
//	tlsintls fetch -proxy URL -size N -n K [-h1] [-tls12] [-upload N] [-parallel] URL-BASE
//
// Server paths: /bytes/N (N incompressible bytes), /page?n=K&size=S (an HTML
// page naming K images of S bytes each), /upload (POST, discarded).
package main

import (
	"crypto/rand"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
)

var chunk = make([]byte, 1<<16)

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", ":443", "listen address")
	cert := fs.String("cert", "", "certificate")
	key := fs.String("key", "", "key")
	fs.Parse(args)
	rand.Read(chunk)
	mux := http.NewServeMux()
	mux.HandleFunc("/bytes/", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/bytes/"))
		if err != nil || n < 0 || n > 1<<30 {
			http.Error(w, "bad size", 400)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		k, _ := strconv.Atoi(r.URL.Query().Get("n"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		var b strings.Builder
		b.WriteString("<!doctype html><html><head><title>corpus page</title>" +
			"<link rel=\"icon\" href=\"data:,\"></head><body><h1>page</h1>\n")
		for i := 0; i < k; i++ {
			fmt.Fprintf(&b, "<img src=\"/bytes/%d?i=%d\" width=1 height=1>\n", size, i)
		}
		b.WriteString("</body></html>\n")
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, b.String())
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d\n", n)
	})
	srv := &http.Server{Addr: *addr, Handler: mux}
	if err := srv.ListenAndServeTLS(*cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func fetch(args []string) {
	fs := flag.NewFlagSet("fetch", flag.ExitOnError)
	proxy := fs.String("proxy", "", "proxy URL (socks5://, http://, https://)")
	size := fs.Int("size", 1000, "bytes per request")
	n := fs.Int("n", 1, "requests on one connection")
	h1 := fs.Bool("h1", false, "HTTP/1.1 only")
	tls12 := fs.Bool("tls12", false, "TLS 1.2 at most")
	upload := fs.Int("upload", 0, "POST this many bytes to /upload instead")
	parallel := fs.Bool("parallel", false, "the requests at once (h2 streams)")
	fs.Parse(args)
	base := fs.Arg(0)
	cfg := &tls.Config{InsecureSkipVerify: true}
	if *tls12 {
		cfg.MaxVersion = tls.VersionTLS12
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: !*h1, MaxConnsPerHost: 1}
	if *h1 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	if *proxy != "" {
		u, err := url.Parse(*proxy)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	client := &http.Client{Transport: tr}
	one := func(i int) error {
		var resp *http.Response
		var err error
		if *upload > 0 {
			body := make([]byte, *upload)
			rand.Read(body)
			resp, err = client.Post(base+"/upload", "application/octet-stream", strings.NewReader(string(body)))
		} else {
			resp, err = client.Get(fmt.Sprintf("%s/bytes/%d?r=%d", base, *size, i))
		}
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	var wg sync.WaitGroup
	failed := false
	var mu sync.Mutex
	for i := 0; i < *n; i++ {
		if *parallel && i > 0 {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if err := one(i); err != nil {
					mu.Lock()
					failed = true
					mu.Unlock()
				}
			}(i)
			continue
		}
		if err := one(i); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	wg.Wait()
	if failed {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tlsintls serve|fetch ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "fetch":
		fetch(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: tlsintls serve|fetch ...")
		os.Exit(2)
	}
}
