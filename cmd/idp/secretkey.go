package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/secret"
)

// secretKeyFile is where the generated secret_key is kept, under data_dir.
const secretKeyFile = "secret.key"

// secretKeys returns the keys derived from secret_key (see loadOrCreateSecretKey).
func (c *cli) secretKeys(cfg *config.Config) (*secret.Keys, error) {
	if err := loadOrCreateSecretKey(cfg, c.stderr); err != nil {
		return nil, err
	}
	return secret.NewKeys(cfg.SecretKeyBytes())
}

// loadOrCreateSecretKey makes sure cfg has its 32-byte secret key. A
// secret_key set in the configuration wins; otherwise the key is read from
// <data_dir>/secret.key (base64 of 32 bytes), which is generated (mode
// 0600) with a warning on warn the first time. `idp serve` and the commands
// that seal or open secrets call it.
func loadOrCreateSecretKey(cfg *config.Config, warn io.Writer) error {
	if len(cfg.SecretKeyBytes()) == 32 {
		return nil
	}
	path := filepath.Join(cfg.DataDir, secretKeyFile)
	key, err := readSecretKeyFile(path, warn)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createSecretKeyFile(path, warn)
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first: use theirs.
			key, err = readSecretKeyFile(path, warn)
		}
	}
	if err != nil {
		return err
	}
	return cfg.SetSecretKey(key)
}

func readSecretKeyFile(path string, warn io.Writer) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("cannot read the secret key file %s: %w; fix its permissions or set secret_key (IDP_SECRET_KEY)", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("the secret key file %s does not hold 32 bytes in base64; restore it from a backup (TOTP secrets and signing keys are sealed with it) or set secret_key (IDP_SECRET_KEY)", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(warn, "idp: warning: the secret key file %s can be read by other users (mode %04o); run `chmod 600 %s`\n", path, fi.Mode().Perm(), path)
	}
	return key, nil
}

func createSecretKeyFile(path string, warn io.Writer) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the data directory for %s: %w; set data_dir (IDP_DATA_DIR) or secret_key (IDP_SECRET_KEY)", path, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("cannot create the secret key file %s: %w; set data_dir (IDP_DATA_DIR) or secret_key (IDP_SECRET_KEY)", path, err)
	}
	_, werr := fmt.Fprintln(f, base64.StdEncoding.EncodeToString(key))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return nil, errors.Join(fmt.Errorf("cannot write the secret key file %s: %w", path, err), os.Remove(path))
	}
	fmt.Fprintf(warn, "idp: warning: secret_key is not set, so a new one was generated into %s. "+
		"Back this file up: TOTP secrets and signing keys are sealed with it. "+
		"Set secret_key (IDP_SECRET_KEY) to the same value on every instance when running more than one.\n", path)
	return key, nil
}
