-- Sign-in look-ups (docs/product.md §3). A login containing '@' is an email, anything else a
-- login id; login ids cannot contain '@' (pattern and CHECK), so a login names at most one user.

-- name: GetUserByLoginKey :one
SELECT * FROM users WHERE login_key = $1;
