package devstack

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// postgresOSUser is the account PostgreSQL runs as when we are root:
// PostgreSQL refuses to run as root, and Debian's package creates this user.
const postgresOSUser = "postgres"

// identity is the OS user a server process runs as.
type identity struct {
	name string
	uid  uint32
	gid  uint32
	gids []uint32 // supplementary groups, including gid
	// drop is true when we are root and must switch to this user to run
	// PostgreSQL; false when PostgreSQL runs as the current user.
	drop bool
}

// postgresIdentity returns the user PostgreSQL will run as: the postgres
// user when we are root, the current user otherwise.
func postgresIdentity() (identity, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return identity{}, fmt.Errorf("look up current user: %w", err)
		}
		return identityOf(u, false)
	}
	u, err := user.Lookup(postgresOSUser)
	if err != nil {
		return identity{}, fmt.Errorf("running as root, PostgreSQL must run as the %q user, which does not exist (install Debian's postgresql package: scripts/ensure-deps.sh): %w", postgresOSUser, err)
	}
	return identityOf(u, true)
}

func identityOf(u *user.User, drop bool) (identity, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return identity{}, fmt.Errorf("user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return identity{}, fmt.Errorf("user %s: gid %q: %w", u.Username, u.Gid, err)
	}
	id := identity{name: u.Username, uid: uint32(uid), gid: uint32(gid), gids: []uint32{uint32(gid)}, drop: drop}
	groups, err := u.GroupIds()
	if err != nil {
		return identity{}, fmt.Errorf("user %s: groups: %w", u.Username, err)
	}
	for _, g := range groups {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			id.gids = append(id.gids, uint32(n))
		}
	}
	return id, nil
}

// ReachableByPostgres reports whether the OS user PostgreSQL runs as (the
// postgres user when we are root, else the current user) can traverse every
// existing directory on the way to dir. A checkout under a 0700 home or temp
// directory is not reachable, and PostgreSQL would fail to start there with a
// confusing error; callers use this to pick another place for the data.
// Directories that do not exist yet are assumed to be created traversable.
func ReachableByPostgres(dir string) bool {
	id, err := postgresIdentity()
	if err != nil {
		return false
	}
	return reachable(dir, id)
}

func reachable(dir string, id identity) bool {
	if id.uid == 0 {
		return true
	}
	existing, err := deepestExisting(dir)
	if err != nil {
		return false
	}
	for d := existing; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || !canTraverse(fi, id) {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

// deepestExisting returns the longest existing prefix of dir with symbolic
// links resolved, since permissions apply to where the links lead.
func deepestExisting(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		resolved, err := filepath.EvalSymlinks(d)
		if err == nil {
			return resolved, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || d == filepath.Dir(d) {
			return "", err
		}
		d = filepath.Dir(d)
	}
}

// canTraverse applies the classic owner/group/other execute bits; ACLs are
// not considered.
func canTraverse(fi fs.FileInfo, id identity) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == id.uid:
		return perm&0o100 != 0
	case slices.Contains(id.gids, st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// DefaultDataRoot is where the dev runner keeps its servers' data for the
// checkout at checkout: <checkout>/.data when PostgreSQL can reach it, else
// a directory under /var/tmp named after the checkout's path, so that each
// checkout keeps its own data across runs.
func DefaultDataRoot(checkout string) string {
	abs, err := filepath.Abs(checkout)
	if err != nil {
		abs = checkout
	}
	inCheckout := filepath.Join(abs, ".data")
	if ReachableByPostgres(inCheckout) {
		return inCheckout
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join("/var/tmp", fmt.Sprintf("bca-%x", sum[:6]))
}

// TempDataRoot creates a new directory, for throw-away servers (tests), that
// PostgreSQL can reach: under $TMPDIR, /var/tmp or /tmp, whichever is
// reachable first, with mode 0755. The caller removes it.
func TempDataRoot(pattern string) (string, error) {
	candidates := []string{os.TempDir(), "/var/tmp", "/tmp"}
	for _, base := range candidates {
		if !ReachableByPostgres(base) {
			continue
		}
		dir, err := os.MkdirTemp(base, pattern)
		if err != nil {
			continue
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			os.Remove(dir)
			return "", fmt.Errorf("temporary data root: %w", err)
		}
		return dir, nil
	}
	return "", fmt.Errorf("no temporary directory reachable by PostgreSQL among %v", candidates)
}
