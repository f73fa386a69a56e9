package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed layout.html pages/*.html static
var files embed.FS

// StaticPath is where the server mounts Static; the pages link their
// stylesheet and images under it:
//
//	mux.Handle(templates.StaticPath, http.StripPrefix(templates.StaticPath, templates.Static()))
const StaticPath = "/static/"

// Page is the data of one hosted page. Each data struct in this package
// implements it; the unexported method names the template it renders with.
type Page interface {
	templateName() string
}

// Pages holds every parsed page. It is safe for concurrent use.
type Pages struct {
	pages map[string]*template.Template
}

// Load parses the layout and every page. It fails, naming each page at
// fault, when a page template is missing, does not parse, or cannot render
// its zero value (a misspelt field, an unknown asset); the server must then
// refuse to start.
func Load() (*Pages, error) {
	return load(files)
}

func load(fsys fs.FS) (*Pages, error) {
	versions, err := assetVersions(fsys)
	if err != nil {
		return nil, err
	}
	layoutSrc, err := fs.ReadFile(fsys, "layout.html")
	if err != nil {
		return nil, fmt.Errorf("templates: layout: %w", err)
	}
	layout, err := template.New("layout.html").Funcs(funcs(versions)).Parse(string(layoutSrc))
	if err != nil {
		return nil, fmt.Errorf("templates: layout: %w", err)
	}
	if layout.Lookup("layout") == nil {
		return nil, errors.New(`templates: layout.html does not define "layout"`)
	}

	p := &Pages{pages: make(map[string]*template.Template, len(required))}
	var errs []error
	for _, page := range required {
		name := page.templateName()
		t, err := parsePage(fsys, layout, name)
		if err == nil {
			// Executing the zero value runs html/template's escaper over
			// the whole page and checks every field the page names, so
			// such mistakes stop the start instead of a request.
			err = t.ExecuteTemplate(io.Discard, "layout", page)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: page %q: %w", name, err))
			continue
		}
		p.pages[name] = t
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// parsePage parses pages/NAME.html on a copy of the layout. A page defines
// "content" and may define "heading" (shown above the alerts).
func parsePage(fsys fs.FS, layout *template.Template, name string) (*template.Template, error) {
	src, err := fs.ReadFile(fsys, "pages/"+name+".html")
	if err != nil {
		return nil, err
	}
	t, err := layout.Clone()
	if err != nil {
		return nil, err
	}
	if _, err := t.New(name + ".html").Parse(string(src)); err != nil {
		return nil, err
	}
	if t.Lookup("content") == nil {
		return nil, fmt.Errorf(`pages/%s.html does not define "content"`, name)
	}
	return t, nil
}

// Render writes page with the given HTTP status. The page is rendered into
// a buffer first: when rendering fails, Render returns the error and has
// written nothing to w (no header, no status, no body), so the caller can
// still answer with an error page or http.Error.
func (p *Pages) Render(w http.ResponseWriter, status int, page Page) error {
	if page == nil {
		return errors.New("templates: render: nil page")
	}
	name := page.templateName()
	t, ok := p.pages[name]
	if !ok {
		return fmt.Errorf("templates: render: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", page); err != nil {
		return fmt.Errorf("templates: render %q: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("templates: render %q: %w", name, err)
	}
	return nil
}

// contentTypes fixes the type of each kind of asset, whatever the host's
// mime.types says.
var contentTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
	".png": "image/png",
	".ico": "image/x-icon",
}

// Static serves the embedded assets, to be mounted at StaticPath with
// http.StripPrefix. The pages link them with a content hash in the query
// (?v=...), so they may be cached for a year. Directories are not listed.
func Static() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // "static" is a valid path: only a broken build gets here.
	}
	fileServer := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		info, err := fs.Stat(sub, name)
		if name == "" || err != nil || info.IsDir() {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		if ct, ok := contentTypes[path.Ext(name)]; ok {
			h.Set("Content-Type", ct)
		}
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("X-Content-Type-Options", "nosniff")
		fileServer.ServeHTTP(w, r)
	})
}

// assetVersions hashes every static file, so a new release changes the
// URLs of the assets it changed and long caching stays correct.
func assetVersions(fsys fs.FS) (map[string]string, error) {
	versions := make(map[string]string)
	err := fs.WalkDir(fsys, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		versions[strings.TrimPrefix(p, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("templates: static assets: %w", err)
	}
	return versions, nil
}

// staticURL returns the template function "static": the versioned URL of
// an embedded asset; an unknown name is an error, caught by Load.
func staticURL(versions map[string]string) func(string) (string, error) {
	return func(name string) (string, error) {
		v, ok := versions[name]
		if !ok {
			return "", fmt.Errorf("no static asset %q", name)
		}
		return StaticPath + name + "?v=" + v, nil
	}
}
