package server

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"time"
)

//go:embed web
var webFiles embed.FS

var indexTemplate = template.Must(template.ParseFS(webFiles, "web/index.html"))

// webRoutes serves the page at / and its assets under /static/. The page
// carries no secret: it asks for the token (or reads it from the URL
// fragment #token=..., which browsers never send to the server) and sends
// it as a bearer header on every API call.
func (s *Server) webRoutes(mux *http.ServeMux) {
	static, err := fs.Sub(webFiles, "web/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	var page bytes.Buffer
	name := s.o.Name
	if name == "" {
		name = "tide"
	}
	if err := indexTemplate.Execute(&page, map[string]string{"Name": name}); err != nil {
		panic(err)
	}
	built := time.Now()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "index.html", built, bytes.NewReader(page.Bytes()))
	})
	files := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
}
