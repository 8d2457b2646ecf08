package httpapi

import (
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
)

// uiFiles is the web dashboard: plain HTML, CSS and JavaScript modules, no
// build step.
//
//go:embed ui
var uiFiles embed.FS

// uiType is the Content-Type of a file of the dashboard, set here rather than
// looked up in the host's MIME tables (/etc/mime.types), which may call a .js
// file something else, or nothing: a browser runs a module script only when
// it is served as JavaScript.
func uiType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return ""
}

// uiCSP keeps the dashboard to this server: no script, style, font or
// connection elsewhere, no inline script, and no framing by another page (the
// dashboard has buttons that run commands: clickjacking would press them).
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// uiRedirect sends GET / to the dashboard: to the path /ui/ on this server
// (on the host named by a request in absolute form, as httprouter's own
// redirects do).
func uiRedirect(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	u := url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host, Path: "/ui/"}
	http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
}

// uiHandler serves the dashboard's files under /ui/. It is a small file server
// rather than http.FileServer so that a missing file gets the API's JSON 404
// and no request is ever redirected (FileServer sends /ui/index.html to ./).
func uiHandler() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic("httpapi: " + err.Error())
	}
	etags := map[string]string{} // so that no-cache costs a 304, not the file
	fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := fs.ReadFile(sub, name)
			etags[name] = fmt.Sprintf(`"%x"`, sha256.Sum256(b))
		}
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/ui/")
		if name == "" {
			name = "index.html"
		}
		f, err := openFile(sub, name)
		if err != nil {
			writeError(w, refuse(errNoRoute, "no such file"))
			return
		}
		defer f.Close()
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("ETag", etags[name])
		if ct := uiType(name); ct != "" {
			h.Set("Content-Type", ct) // ServeContent would look it up
		}
		http.ServeContent(w, r, path.Base(name), time.Time{}, f.(io.ReadSeeker))
	})
}

// openFile opens a regular file of fsys that can seek, or fails.
func openFile(fsys fs.FS, name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, fs.ErrNotExist
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	_, seeks := f.(io.ReadSeeker)
	if err != nil || !st.Mode().IsRegular() || !seeks {
		f.Close()
		return nil, errors.Join(fs.ErrNotExist, err)
	}
	return f, nil
}
