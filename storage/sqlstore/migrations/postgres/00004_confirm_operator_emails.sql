-- E-mail addresses set before users could set their own (by an operator,
-- the CLI or the configuration) count as confirmed: the operator's word.
-- Without this, existing users would get no password reset links and no
-- security notices, which go to confirmed addresses only.

-- +goose Up
UPDATE users SET email_verified = TRUE WHERE email <> '';

-- +goose Down
-- Nothing to undo: which addresses were confirmed before is not known.
SELECT 1;
