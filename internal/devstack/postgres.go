package devstack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// debianPostgresGlob matches the server binaries of every PostgreSQL major
// version Debian's packages have installed side by side.
const debianPostgresGlob = "/usr/lib/postgresql/*/bin/postgres"

// maxUnixSocketPath is the longest socket path PostgreSQL accepts (the size
// of sun_path minus its terminating NUL).
const maxUnixSocketPath = 107

// Postgres is a private PostgreSQL server on a loopback port, with trust
// authentication for the superuser "postgres".
type Postgres struct {
	dataDir string
	port    int
	proc    *process
}

// StartPostgres starts a PostgreSQL server whose cluster lives in dataDir,
// creating the cluster first if dataDir does not hold one, so a second start
// reuses the data of the first. When we are root the server runs as the
// postgres OS user, which must be able to reach dataDir (see
// ReachableByPostgres). It returns once the server accepts connections.
func StartPostgres(ctx context.Context, dataDir string, opts Options, log *slog.Logger) (*Postgres, error) {
	return startServerOnFreePort(ctx, func(ctx context.Context, port int) (*Postgres, error) {
		return StartPostgresOnPort(ctx, dataDir, port, opts, log)
	})
}

// StartPostgresOnPort is StartPostgres on a given port: a server stopped and
// started again on its port and data directory is what clients see of a
// database restart in production (dropped connections, refused connections,
// then the same address answering with the same data).
func StartPostgresOnPort(ctx context.Context, dataDir string, port int, opts Options, log *slog.Logger) (*Postgres, error) {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("postgres data directory %q: %w", dataDir, err)
	}
	owner, err := postgresIdentity()
	if err != nil {
		return nil, err
	}
	if err := preparePostgresDir(dataDir, owner); err != nil {
		return nil, err
	}
	bin, err := postgresBinDir(dataDir)
	if err != nil {
		return nil, err
	}
	if !hasCluster(dataDir) {
		if err := initdb(ctx, bin, dataDir, owner, opts, log); err != nil {
			return nil, err
		}
	}
	pg := &Postgres{dataDir: dataDir}
	if err := pg.start(ctx, bin, port, owner, opts, log); err != nil {
		return nil, fmt.Errorf("start postgres in %s on port %d: %w", dataDir, port, err)
	}
	log.Info("postgres ready", "url", pg.URL("postgres"), "data", dataDir)
	return pg, nil
}

// URL is the connection URL of database db as the superuser.
func (pg *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, url.PathEscape(db))
}

// Stop shuts the server down in PostgreSQL's "fast" mode (what
// `pg_ctl stop -m fast` asks for): sessions are disconnected, the data is
// checkpointed and the server exits.
func (pg *Postgres) Stop() error {
	// SIGINT to the postmaster is fast shutdown; we own the process, so
	// signalling it directly avoids running pg_ctl as another user.
	return pg.proc.stop(syscall.SIGINT, 30*time.Second)
}

func (pg *Postgres) start(ctx context.Context, bin string, port int, owner identity, opts Options, log *slog.Logger) error {
	cmd := exec.Command(filepath.Join(bin, "postgres"), postgresArgs(pg.dataDir, port, opts)...)
	runAs(cmd, owner, pg.dataDir)
	proc, err := startProcess("postgres", cmd, log)
	if err != nil {
		return err
	}
	pg.proc, pg.port = proc, port
	if err := waitReady(ctx, proc, pg.ping); err != nil {
		_ = proc.stop(syscall.SIGQUIT, 5*time.Second)
		return err
	}
	return nil
}

func (pg *Postgres) ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

// postgresArgs configures the server on the command line, leaving the
// cluster's configuration files as initdb wrote them.
func postgresArgs(dataDir string, port int, opts Options) []string {
	args := []string{
		"-D", dataDir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + socketDir(dataDir, port),
	}
	if opts.Ephemeral {
		args = append(args,
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
			"-c", "max_connections=300",
		)
	}
	return args
}

// socketDir keeps the Unix socket inside the data directory rather than in
// the system's /var/run/postgresql, which may not exist or belong to another
// server. If the path would be too long for a socket, there is no socket:
// clients use TCP anyway.
func socketDir(dataDir string, port int) string {
	socket := filepath.Join(dataDir, ".s.PGSQL."+strconv.Itoa(port))
	if len(socket) > maxUnixSocketPath {
		return ""
	}
	return dataDir
}

// runAs makes cmd run as owner (when we must drop root) in dir, so the
// server does not inherit a working directory it cannot read.
func runAs(cmd *exec.Cmd, owner identity, dir string) {
	cmd.Dir = dir
	if !owner.drop {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: owner.uid, Gid: owner.gid, Groups: owner.gids}
}

// preparePostgresDir creates dataDir with the owner and mode PostgreSQL
// insists on, after checking that the server will be able to reach it.
func preparePostgresDir(dataDir string, owner identity) error {
	parent := filepath.Dir(dataDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	if !reachable(parent, owner) {
		return fmt.Errorf("postgres data directory %s: the %q OS user cannot reach %s (a parent directory is not searchable by it); choose a data directory it can reach, e.g. with devstack.DefaultDataRoot",
			dataDir, owner.name, parent)
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create postgres data directory: %w", err)
	}
	if owner.drop {
		if err := os.Chown(dataDir, int(owner.uid), int(owner.gid)); err != nil {
			return fmt.Errorf("hand postgres data directory to %s: %w", owner.name, err)
		}
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return fmt.Errorf("postgres data directory: %w", err)
	}
	return nil
}

func hasCluster(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "PG_VERSION"))
	return err == nil
}

// postgresBinDir finds the binaries to run the cluster in dataDir with: the
// major version that created it, or for a new cluster the newest installed.
func postgresBinDir(dataDir string) (string, error) {
	if v, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		major := strings.TrimSpace(string(v))
		bin := filepath.Join("/usr/lib/postgresql", major, "bin")
		if _, err := os.Stat(filepath.Join(bin, "postgres")); err == nil {
			return bin, nil
		}
		if bin, ok := binDirOnPath(major); ok {
			return bin, nil
		}
		return "", fmt.Errorf("the cluster in %s was created by PostgreSQL %s, whose server binaries are not installed; remove the directory to start afresh", dataDir, major)
	}
	if bin, ok := newestDebianBinDir(); ok {
		return bin, nil
	}
	if bin, ok := binDirOnPath(""); ok {
		return bin, nil
	}
	return "", fmt.Errorf("no PostgreSQL server binaries in %s or on PATH; run scripts/ensure-deps.sh", debianPostgresGlob)
}

func newestDebianBinDir() (string, bool) {
	matches, _ := filepath.Glob(debianPostgresGlob)
	best, bestMajor := "", -1
	for _, m := range matches {
		bin := filepath.Dir(m)
		major, err := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
		if err == nil && major > bestMajor {
			best, bestMajor = bin, major
		}
	}
	return best, bestMajor >= 0
}

// binDirOnPath supports installations outside Debian's layout (Homebrew,
// a source build): the directory of the postgres on PATH, if it is of the
// wanted major version (any when major is empty).
func binDirOnPath(major string) (string, bool) {
	path, err := exec.LookPath("postgres")
	if err != nil {
		return "", false
	}
	if major != "" {
		out, err := exec.Command(path, "--version").Output()
		fields := strings.Fields(string(out))
		if err != nil || len(fields) == 0 || !strings.HasPrefix(fields[len(fields)-1], major+".") {
			return "", false
		}
	}
	return filepath.Dir(path), true
}

func initdb(ctx context.Context, bin, dataDir string, owner identity, opts Options, log *slog.Logger) error {
	args := []string{
		"-D", dataDir,
		"-U", "postgres",
		"--auth=trust",
		"--encoding=UTF8",
		"--locale=C",
	}
	if opts.Ephemeral {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
	runAs(cmd, owner, dataDir)
	withChildAttributes(cmd)
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb %s: %w; output:\n%s", dataDir, err, out)
	}
	log.Info("postgres cluster created", "data", dataDir, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
