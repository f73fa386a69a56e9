package main

// Small pieces of cmd/idp (package main there, so copied rather than
// imported): the configuration is read, the database opened and the
// secret key found exactly as `idp serve` does, so that what `seed` writes
// is what the server reads.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/storage/sqlstore"
)

// loadConfig reads the configuration as `idp serve` does.
func (c *cli) loadConfig() (*config.Config, error) {
	file := c.configFile
	if file == "" {
		file = c.getenv("IDP_CONFIG")
	}
	cfg, err := config.Load(config.Source{File: file, Environ: c.environ})
	if err != nil {
		if strings.Contains(err.Error(), "\n") {
			return nil, fmt.Errorf("the configuration is invalid; fix these keys (in the file or their IDP_ variables):\n%w", err)
		}
		return nil, err
	}
	return cfg, nil
}

// openStore opens and migrates the configured durable store (creating the
// directory of an SQLite file). The caller closes it.
func openStore(ctx context.Context, cfg *config.Config) (*sqlstore.Store, error) {
	if path, ok := strings.CutPrefix(cfg.Database.URL, "sqlite://"); ok && path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("cannot create the directory of the SQLite database (database.url): %w", err)
		}
	}
	st, err := sqlstore.Open(ctx, cfg.Database.URL)
	if err != nil {
		return nil, fmt.Errorf("cannot open the database; check database.url (IDP_DATABASE_URL): %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("cannot migrate the database: %w", err), st.Close())
	}
	return st, nil
}

// secretKeyFile is where `idp` keeps a generated secret_key, under data_dir.
const secretKeyFile = "secret.key"

// loadOrCreateSecretKey makes sure cfg has its 32-byte secret key, as
// `idp serve` finds it: secret_key from the configuration, else
// <data_dir>/secret.key, generated (mode 0600) when missing so that the
// server started afterwards uses the same one.
func loadOrCreateSecretKey(cfg *config.Config) error {
	if len(cfg.SecretKeyBytes()) == 32 {
		return nil
	}
	path := filepath.Join(cfg.DataDir, secretKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createSecretKeyFile(cfg, path)
	}
	if err != nil {
		return fmt.Errorf("cannot read the secret key file %s: %w", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return fmt.Errorf("the secret key file %s does not hold 32 bytes in base64", path)
	}
	return cfg.SetSecretKey(key)
}

func createSecretKeyFile(cfg *config.Config, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("cannot create the data directory for %s: %w", path, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateSecretKey(cfg) // another process made it first
	}
	if err != nil {
		return fmt.Errorf("cannot create the secret key file %s: %w", path, err)
	}
	_, werr := fmt.Fprintln(f, base64.StdEncoding.EncodeToString(key))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return errors.Join(fmt.Errorf("cannot write the secret key file %s: %w", path, err), os.Remove(path))
	}
	return cfg.SetSecretKey(key)
}
