package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The rules of the API's container image (README: deployment), checked on deploy/Dockerfile
// without a container engine: the final stage starts from an empty (scratch) or distroless
// static base, runs as a numeric non-root user, has no shell (no RUN, exec-form ENTRYPOINT and
// CMD, no shell or busybox copied in), and copies exactly the expected files.

// wantCopies are the final stage's COPY instructions: source(s) and destination.
var wantCopies = []string{
	"ca-certificates.crt -> /etc/ssl/certs/ca-certificates.crt",
	"passwd -> /etc/passwd",
	"bca-api bcactl -> /usr/local/bin/",
}

func TestDockerfileRules(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if problems := dockerfileProblems(string(b), wantCopies); len(problems) > 0 {
		t.Errorf("deploy/Dockerfile breaks the image rules:\n%s", strings.Join(problems, "\n"))
	}
}

// TestDockerfileRulesCatchViolations: the checker rejects each kind of broken file, so the test
// above can fail.
func TestDockerfileRulesCatchViolations(t *testing.T) {
	good := "FROM scratch\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\nCOPY passwd /etc/passwd\n" +
		"COPY bca-api bcactl /usr/local/bin/\nUSER 65532:65532\nENTRYPOINT [\"/usr/local/bin/bca-api\"]\n"
	if p := dockerfileProblems(good, wantCopies); len(p) > 0 {
		t.Fatalf("a good file was rejected: %v", p)
	}
	bad := map[string]string{
		"pulled base":        strings.Replace(good, "FROM scratch", "FROM debian:bookworm", 1),
		"root user":          strings.Replace(good, "USER 65532:65532", "USER 0:0", 1),
		"named user":         strings.Replace(good, "USER 65532:65532", "USER nonroot", 1),
		"no user":            strings.Replace(good, "USER 65532:65532\n", "", 1),
		"user before a root": good + "USER root\n",
		"run":                strings.Replace(good, "USER", "RUN echo hi\nUSER", 1),
		"shell entrypoint":   strings.Replace(good, `ENTRYPOINT ["/usr/local/bin/bca-api"]`, "ENTRYPOINT /usr/local/bin/bca-api", 1),
		"shell cmd":          good + "CMD serve\n",
		"busybox copied":     strings.Replace(good, "COPY passwd", "COPY busybox /bin/sh\nCOPY passwd", 1),
		"extra copy":         strings.Replace(good, "COPY passwd /etc/passwd", "COPY passwd /etc/passwd\nCOPY . /src", 1),
		"missing copy":       strings.Replace(good, "COPY passwd /etc/passwd\n", "", 1),
		"add":                strings.Replace(good, "COPY passwd /etc/passwd", "ADD passwd /etc/passwd", 1),
		"final stage from a build stage": "FROM golang:1.26 AS build\nRUN go build ./...\n" +
			strings.Replace(good, "FROM scratch", "FROM build", 1),
	}
	for name, file := range bad {
		if p := dockerfileProblems(file, wantCopies); len(p) == 0 {
			t.Errorf("%s: not rejected:\n%s", name, file)
		}
	}
	// A build stage may use a pulled base and RUN; only the final stage is the image.
	staged := "FROM golang:1.26 AS build\nRUN go build -o /out/ ./cmd/bca-api\n" +
		strings.Replace(good, "COPY bca-api bcactl", "COPY --from=build /out/bca-api /out/bcactl", 1)
	if p := dockerfileProblems(staged, []string{wantCopies[0], wantCopies[1], "--from=build /out/bca-api /out/bcactl -> /usr/local/bin/"}); len(p) > 0 {
		t.Errorf("a build stage with the same final stage was rejected: %v", p)
	}
}

// instruction is one Dockerfile instruction: the keyword in upper case and the rest.
type instruction struct {
	line    int
	keyword string
	args    string
}

// parseDockerfile splits a Dockerfile into instructions, joining continuation lines and
// dropping comments.
func parseDockerfile(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		kw, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, keyword: strings.ToUpper(kw), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

var (
	emptyBase   = regexp.MustCompile(`^(scratch|gcr\.io/distroless/static(-debian\d+)?(:[\w.-]+)?(@sha256:[0-9a-f]{64})?)$`)
	numericUser = regexp.MustCompile(`^(\d+)(:(\d+))?$`)
	shellLike   = regexp.MustCompile(`(^|/)(sh|bash|ash|dash|busybox|toybox)$`)
)

// dockerfileProblems lists how src breaks the image rules; want are the final stage's COPY
// instructions as "sources -> destination".
func dockerfileProblems(src string, want []string) []string {
	var problems []string
	bad := func(in instruction, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("line %d (%s %s): %s", in.line, in.keyword, in.args, fmt.Sprintf(format, args...)))
	}
	ins := parseDockerfile(src)
	final := -1
	for i, in := range ins {
		if in.keyword == "FROM" {
			final = i
		}
	}
	if final < 0 {
		return []string{"no FROM"}
	}
	from := strings.Fields(ins[final].args)
	if len(from) == 0 || !emptyBase.MatchString(from[0]) {
		bad(ins[final], "the final stage must start FROM scratch or a distroless static base (no shell, nothing pulled that has one)")
	}
	var copies []string
	user := ""
	for _, in := range ins[final+1:] {
		switch in.keyword {
		case "RUN":
			bad(in, "the final stage has no shell to RUN anything")
		case "ADD":
			bad(in, "use COPY: ADD fetches URLs and unpacks archives")
		case "ENTRYPOINT", "CMD":
			var argv []string
			if json.Unmarshal([]byte(in.args), &argv) != nil || len(argv) == 0 {
				bad(in, "must be in exec form (a JSON array): the shell form needs /bin/sh")
			} else if shellLike.MatchString(argv[0]) {
				bad(in, "starts a shell")
			}
		case "USER":
			user = in.args
			m := numericUser.FindStringSubmatch(in.args)
			if m == nil {
				bad(in, "the user must be numeric (uid:gid): a name needs a lookup the runtime may not do")
				continue
			}
			if uid, _ := strconv.Atoi(m[1]); uid == 0 {
				bad(in, "runs as root")
			}
			if m[3] != "" {
				if gid, _ := strconv.Atoi(m[3]); gid == 0 {
					bad(in, "runs with the root group")
				}
			}
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) < 2 {
				bad(in, "incomplete COPY")
				continue
			}
			for _, p := range f {
				if shellLike.MatchString(p) {
					bad(in, "copies a shell into the image")
				}
			}
			copies = append(copies, strings.Join(f[:len(f)-1], " ")+" -> "+f[len(f)-1])
		}
	}
	if user == "" {
		problems = append(problems, "the final stage sets no USER: the image would run as root")
	}
	for _, c := range copies {
		if !slices.Contains(want, c) {
			problems = append(problems, "unexpected COPY "+c)
		}
	}
	for _, w := range want {
		if !slices.Contains(copies, w) {
			problems = append(problems, "missing COPY "+w)
		}
	}
	return problems
}
