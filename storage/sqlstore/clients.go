package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hostportal/idp/storage"
)

const clientColumns = `id, name, secret_hash, public, redirect_uris, post_logout_redirect_uris,
	grant_types, scopes, first_party, require_mfa, source, created_at, updated_at`

func scanClient(sc scanner) (*storage.Client, error) {
	var (
		c                                     storage.Client
		redirects, postLogout, grants, scopes string
		created, updated                      int64
	)
	if err := sc.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, &redirects, &postLogout,
		&grants, &scopes, &c.FirstParty, &c.RequireMFA, &c.Source, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if c.RedirectURIs, err = decodeList(redirects); err != nil {
		return nil, err
	}
	if c.PostLogoutRedirectURIs, err = decodeList(postLogout); err != nil {
		return nil, err
	}
	if c.GrantTypes, err = decodeList(grants); err != nil {
		return nil, err
	}
	if c.Scopes, err = decodeList(scopes); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &c, nil
}

// CreateClient stores c; ErrConflict when the id is taken.
func (s *Store) CreateClient(ctx context.Context, c *storage.Client) error {
	if c.ID == "" {
		return errors.New("sqlstore: create client: id is required")
	}
	op := fmt.Sprintf("sqlstore: create client %q", c.ID)
	lists, err := encodeLists(c.RedirectURIs, c.PostLogoutRedirectURIs, c.GrantTypes, c.Scopes)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = s.exec(ctx, s.db, `INSERT INTO clients (`+clientColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.SecretHash, c.Public, lists[0], lists[1], lists[2], lists[3],
		c.FirstParty, c.RequireMFA, c.Source, millis(c.CreatedAt), millis(c.UpdatedAt))
	if err != nil {
		return dbError(op, err)
	}
	return nil
}

// ClientByID returns the client with id; ErrNotFound if there is none.
func (s *Store) ClientByID(ctx context.Context, id string) (*storage.Client, error) {
	c, err := scanClient(s.queryRow(ctx, s.db, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if err != nil {
		return nil, dbError(fmt.Sprintf("sqlstore: client by id %q", id), err)
	}
	return c, nil
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]*storage.Client, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, dbError("sqlstore: list clients", err)
	}
	defer rows.Close()
	var clients []*storage.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list clients: %w", err)
		}
		clients = append(clients, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list clients: %w", err)
	}
	return clients, nil
}

// UpdateClient replaces every field of the client with c.ID but CreatedAt.
func (s *Store) UpdateClient(ctx context.Context, c *storage.Client) error {
	op := fmt.Sprintf("sqlstore: update client %q", c.ID)
	lists, err := encodeLists(c.RedirectURIs, c.PostLogoutRedirectURIs, c.GrantTypes, c.Scopes)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.execOne(ctx, s.db, op,
		`UPDATE clients SET name = ?, secret_hash = ?, public = ?, redirect_uris = ?,
			post_logout_redirect_uris = ?, grant_types = ?, scopes = ?, first_party = ?,
			require_mfa = ?, source = ?, updated_at = ?
		WHERE id = ?`,
		c.Name, c.SecretHash, c.Public, lists[0], lists[1], lists[2], lists[3], c.FirstParty,
		c.RequireMFA, c.Source, millis(c.UpdatedAt), c.ID)
}

// DeleteClient removes the client; ON DELETE CASCADE removes its refresh
// tokens and consents. ErrNotFound if the client does not exist.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.execOne(ctx, s.db, fmt.Sprintf("sqlstore: delete client %q", id),
		`DELETE FROM clients WHERE id = ?`, id)
}
