package idp_test

import (
	"context"
	"encoding/base64"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/signing"
	"github.com/hostportal/idp/storage"
)

func storageQuery() storage.AuditQuery { return storage.AuditQuery{Limit: 1000} }

func base64URLDecode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func clientCredentialsConfig(env *idptest.Env, id, secret string, scopes []string) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: env.Issuer + "/oauth/token", Scopes: scopes}
}

func rotate(env *idptest.Env) (*storage.SigningKey, error) {
	return signing.Rotate(context.Background(), env.Store, env.Keys, signing.DefaultAlgorithm, env.Clock.Now(), time.Hour)
}
