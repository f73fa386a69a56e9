package idp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/hostportal/idp/signing"
)

// keyDocuments keeps the two documents made from the published signing keys
// marshalled: the JWKS (jwks_uri) and the discovery document, whose
// id_token_signing_alg_values_supported are the published keys' algorithms.
// Every relying party fetches them, and the library's /keys handler builds
// and marshals the JWKS again for each request. They are rebuilt only when
// signing.Set's published keys change (a reload that finds a rotation or an
// expired key), so discovery also follows a rotation to another algorithm
// made by another instance or by `idp keys rotate`.
type keyDocuments struct {
	keys  *signing.Set
	build func(keys []*signing.Key) (jwks, discovery []byte, err error)

	mu  sync.Mutex // one rebuild at a time
	cur atomic.Pointer[builtKeyDocuments]
}

// builtKeyDocuments are the documents of one version of the published keys.
type builtKeyDocuments struct {
	version   uint64 // signing.Set.PublishedVersion
	jwks      []byte
	discovery []byte
}

// get returns the documents of the published keys, rebuilt if the keys
// changed since the last call. When a rebuild fails the previous documents
// stay (the failure is logged once per version of the keys); there is an
// error only when there are none.
func (d *keyDocuments) get() (*builtKeyDocuments, error) {
	_, v := d.keys.PublishedVersion()
	if b := d.cur.Load(); b != nil && b.version == v {
		return b, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	keys, v := d.keys.PublishedVersion()
	prev := d.cur.Load()
	if prev != nil && prev.version == v {
		return prev, nil
	}
	jwks, discovery, err := d.build(keys)
	if err != nil {
		if prev == nil {
			return nil, err
		}
		slog.Error("rebuilding the JWKS and discovery after the signing keys changed failed; serving the previous ones", "error", err)
		d.cur.Store(&builtKeyDocuments{version: v, jwks: prev.jwks, discovery: prev.discovery})
		return prev, nil
	}
	b := &builtKeyDocuments{version: v, jwks: jwks, discovery: discovery}
	d.cur.Store(b)
	return b, nil
}

// buildKeyDocuments makes the JWKS and discovery documents of keys.
func (s *Server) buildKeyDocuments(keys []*signing.Key) (jwks, discovery []byte, err error) {
	if jwks, err = marshalJWKS(keys); err != nil {
		return nil, nil, err
	}
	if discovery, err = s.buildDiscovery(keyAlgorithms(keys)); err != nil {
		return nil, nil, err
	}
	return jwks, discovery, nil
}

// marshalJWKS writes keys as the library's /keys handler does (the same
// fields through publicKey, and json.Encoder's final newline).
func marshalJWKS(keys []*signing.Key) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(keys))}
	for i, k := range keys {
		pk := publicKey{k}
		set.Keys[i] = jose.JSONWebKey{KeyID: pk.ID(), Algorithm: string(pk.Algorithm()), Use: pk.Use(), Key: pk.Key()}
	}
	raw, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("idp: marshalling the JWKS: %w", err)
	}
	return append(raw, '\n'), nil
}

// keyAlgorithms are the algorithms of published keys, newest key's first,
// each once: what discovery lists as id_token_signing_alg_values_supported
// (relying parties such as go-oidc accept only those).
type keyAlgorithms []*signing.Key

func (ks keyAlgorithms) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	var algs []jose.SignatureAlgorithm
	for _, k := range ks {
		if a := jose.SignatureAlgorithm(k.Algorithm); !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	return algs, nil
}

// handleJWKS serves jwks_uri from the marshalled JWKS with what the
// library's handler sends: Content-Type application/json, and the
// Cache-Control of every response (no-store: a relying party that meets an
// unknown key id sees the new key at once). It is mounted behind the
// library's CORS policy (Server.Mount).
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if docs := s.keyDocument(w, r, "the JWKS"); docs != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Write(docs.jwks)
	}
}

// keyDocument answers what is not a GET or HEAD, and a failure to build
// the documents (named what in the log), itself; otherwise it returns the
// marshalled documents for the caller to write.
func (s *Server) keyDocument(w http.ResponseWriter, r *http.Request, what string) *builtKeyDocuments {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil
	}
	docs, err := s.keyDocuments.get()
	if err != nil {
		slog.ErrorContext(r.Context(), "building "+what+" failed", "error", err)
		http.Error(w, what+" is unavailable", http.StatusInternalServerError)
		return nil
	}
	return docs
}
