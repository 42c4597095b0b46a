package raycli

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// jobCommonFlags are the options every `ray job` command takes
// (https://docs.ray.io/en/latest/cluster/running-applications/job-submission/cli.html).
var jobCommonFlags = append([]flagSpec{
	{name: "address", kind: valueFlag, usage: "Dashboard `address`: http(s)://host:port, ray://host:port or a control service " +
		"host:port (default http://localhost:8265); $RAY_API_SERVER_ADDRESS or $RAY_ADDRESS win over it"},
	{name: "headers", kind: valueFlag, usage: "HTTP headers to send to the dashboard, as a `JSON` object of strings (default $RAY_JOB_HEADERS)"},
	compat("verify", valueFlag),
}, loggingFlags...)

func jobFlags(extra ...flagSpec) []flagSpec {
	return append(append([]flagSpec{}, jobCommonFlags...), extra...)
}

func (c *cli) jobCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job COMMAND [ARGS]...",
		Short: "Submit and manage jobs through the cluster's Jobs API.",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				fmt.Fprint(c.stderr, cmd.UsageString())
				return exitCode(usageExit)
			}
			return fmt.Errorf("unknown command %q", args[0])
		},
	}
	submit := c.jobSubcommand("submit [OPTIONS] [--] ENTRYPOINT...", "Submit a job; follow its logs until it ends unless --no-wait.",
		submitFlags, cobra.ArbitraryArgs, c.jobSubmit)
	submit.Long = `Submit a job and, unless --no-wait, print its logs until it ends; exit 1
when the job failed. The entrypoint is the words after the options (or
after "--"), passed on verbatim, flags included.`
	// The first word that is not an option starts the entrypoint, so the
	// entrypoint's own flags are never read as ours.
	submit.Flags().SetInterspersed(false)
	// The entrypoint is usually a script on this machine.
	submit.ValidArgsFunction = cobra.FixedCompletions(nil, cobra.ShellCompDirectiveDefault)
	cmd.AddCommand(
		submit,
		c.jobSubcommand("status [OPTIONS] JOB_ID", "Print a job's status; exit 1 when it does not exist.",
			jobFlags(), cobra.ArbitraryArgs, c.jobStatus),
		c.jobSubcommand("logs [OPTIONS] JOB_ID", "Print a job's logs, or follow them until it ends (-f).",
			jobFlags(flagSpec{name: "follow", kind: boolFlag, short: "f", usage: "Follow the logs until the job ends"}),
			cobra.ArbitraryArgs, c.jobLogs),
		c.jobSubcommand("stop [OPTIONS] JOB_ID", "Stop a job and wait until it has ended unless --no-wait.",
			jobFlags(flagSpec{name: "no-wait", kind: boolFlag, usage: "Return once the stop is requested"}),
			cobra.ArbitraryArgs, c.jobStop),
		c.jobSubcommand("list [OPTIONS]", "List the cluster's jobs.", jobFlags(), unexpectedArgs, c.jobList),
		c.jobSubcommand("delete [OPTIONS] JOB_ID", "Delete a job that has ended, with its logs.", jobFlags(), cobra.ArbitraryArgs, c.jobDelete),
	)
	return cmd
}

// jobSubcommand builds `ray job <use>`. Commands taking a job id check it
// themselves (oneID), keeping the exit status of a usage mistake at 1.
func (c *cli) jobSubcommand(use, short string, flags []flagSpec, args cobra.PositionalArgs,
	run func(context.Context, *parsedFlags) int) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(run(cmd.Context(), &parsedFlags{fs: cmd.Flags(), args: args}))
		},
	}
	addFlags(cmd, flags)
	return cmd
}

func (c *cli) fail(cmd string, err error) int {
	fmt.Fprintf(c.stderr, "ray job %s: %v\n", cmd, err)
	return 1
}

// client resolves the dashboard and checks it answers /api/version first,
// as Ray's SDK does on construction.
func (c *cli) client(ctx context.Context, p *parsedFlags) (*dashboard.Client, error) {
	base, err := resolveDashboardURL(ctx, p.str("address"), c.getenv)
	if err != nil {
		return nil, err
	}
	var opts []dashboard.ClientOption
	headers := p.str("headers")
	if headers == "" {
		headers = c.getenv("RAY_JOB_HEADERS")
	}
	if headers != "" {
		var h map[string]string
		if err := json.Unmarshal([]byte(unquote(headers)), &h); err != nil {
			return nil, fmt.Errorf("invalid --headers: expected a JSON object of strings: %w", err)
		}
		for k, v := range h {
			opts = append(opts, dashboard.WithHeader(k, v))
		}
	}
	if tok := c.getenv("RAY_AUTH_TOKEN"); tok != "" {
		opts = append(opts, dashboard.WithBearerToken(tok))
	}
	cl, err := dashboard.NewClient(base, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := cl.Version(ctx); err != nil {
		return nil, fmt.Errorf("could not connect to the Ray dashboard at %s: %w", base, err)
	}
	return cl, nil
}

func (c *cli) oneID(p *parsedFlags) (string, error) {
	if len(p.args) != 1 {
		return "", fmt.Errorf("expected exactly one job id, got %d arguments", len(p.args))
	}
	return p.args[0], nil
}

var submitFlags = jobFlags(
	flagSpec{name: "submission-id", kind: valueFlag, usage: "Job `ID` (default: one the cluster generates)"},
	flagSpec{name: "job-id", kind: valueFlag, usage: "Job `ID`: the older name of --submission-id"},
	flagSpec{name: "runtime-env", kind: valueFlag, usage: "YAML `file` with the job's runtime environment", complete: completeFiles},
	flagSpec{name: "runtime-env-json", kind: valueFlag, usage: "The job's runtime environment as a `JSON` object (not with --runtime-env)"},
	flagSpec{name: "working-dir", kind: valueFlag, usage: "Working `directory`: a local directory to upload, or a remote zip URI; overrides the runtime environment's",
		complete: completeDirs},
	flagSpec{name: "metadata-json", kind: valueFlag, usage: "Job metadata as a `JSON` object of strings"},
	flagSpec{name: "entrypoint-num-cpus", kind: valueFlag, usage: "CPUs to reserve for the entrypoint (a `number`)"},
	flagSpec{name: "entrypoint-num-gpus", kind: valueFlag, usage: "GPUs to reserve for the entrypoint (a `number`)"},
	flagSpec{name: "entrypoint-memory", kind: valueFlag, usage: "Memory in `bytes` to reserve for the entrypoint"},
	flagSpec{name: "entrypoint-resources", kind: valueFlag, usage: "Custom resources to reserve for the entrypoint, as a `JSON` object of numbers"},
	flagSpec{name: "entrypoint-label-selector", kind: valueFlag, usage: "Node labels the entrypoint must run on, as a `JSON` object of strings"},
	flagSpec{name: "no-wait", kind: boolFlag, usage: "Return once the job is submitted instead of following its logs"},
)

// buildSubmitRequest turns `ray job submit` flags into the request body.
// Local working directories are uploaded later, by the caller.
func buildSubmitRequest(p *parsedFlags) (*dashboard.JobSubmitRequest, error) {
	if len(p.args) == 0 {
		return nil, errors.New("an entrypoint is required: ray job submit [options] -- <entrypoint...>")
	}
	req := &dashboard.JobSubmitRequest{
		Entrypoint:   list2cmdline(p.args),
		SubmissionID: p.str("submission-id"),
	}
	if req.SubmissionID == "" {
		req.SubmissionID = p.str("job-id")
	}
	if p.has("runtime-env") && p.has("runtime-env-json") {
		return nil, errors.New("only one of --runtime-env and --runtime-env-json can be given")
	}
	if f := p.str("runtime-env"); f != "" {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading --runtime-env: %w", err)
		}
		if err := yaml.Unmarshal(raw, &req.RuntimeEnv); err != nil {
			return nil, fmt.Errorf("parsing --runtime-env %s: %w", f, err)
		}
	}
	if v := p.str("runtime-env-json"); v != "" {
		if err := json.Unmarshal([]byte(unquote(v)), &req.RuntimeEnv); err != nil {
			return nil, fmt.Errorf("invalid --runtime-env-json: %w", err)
		}
	}
	if wd := p.str("working-dir"); wd != "" {
		if req.RuntimeEnv == nil {
			req.RuntimeEnv = map[string]any{}
		}
		req.RuntimeEnv["working_dir"] = wd
	}
	if v := p.str("metadata-json"); v != "" {
		if err := json.Unmarshal([]byte(unquote(v)), &req.Metadata); err != nil {
			return nil, fmt.Errorf("invalid --metadata-json: expected a JSON object of strings: %w", err)
		}
	}
	for _, f := range []struct {
		flag string
		dst  *float64
	}{{"entrypoint-num-cpus", &req.EntrypointNumCPUs}, {"entrypoint-num-gpus", &req.EntrypointNumGPUs}} {
		if v := p.str(f.flag); v != "" {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid --%s %q: expected a number", f.flag, v)
			}
			*f.dst = n
		}
	}
	if v := p.str("entrypoint-memory"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid --entrypoint-memory %q: expected an integer", v)
		}
		req.EntrypointMemory = n
	}
	if v := p.str("entrypoint-resources"); v != "" {
		if err := json.Unmarshal([]byte(unquote(v)), &req.EntrypointResources); err != nil {
			return nil, fmt.Errorf("invalid --entrypoint-resources: expected a JSON object of numbers: %w", err)
		}
	}
	if v := p.str("entrypoint-label-selector"); v != "" {
		if err := json.Unmarshal([]byte(unquote(v)), &req.EntrypointLabelSelector); err != nil {
			return nil, fmt.Errorf("invalid --entrypoint-label-selector: expected a JSON object of strings: %w", err)
		}
	}
	return req, nil
}

// list2cmdline joins the entrypoint words the way Ray does (Python's
// subprocess.list2cmdline): words with blanks are double-quoted.
func list2cmdline(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\"") {
			out[i] = a
			continue
		}
		out[i] = `"` + strings.ReplaceAll(a, `"`, `\"`) + `"`
	}
	return strings.Join(out, " ")
}

func (c *cli) jobSubmit(ctx context.Context, p *parsedFlags) int {
	req, err := buildSubmitRequest(p)
	if err != nil {
		return c.fail("submit", err)
	}
	cl, err := c.client(ctx, p)
	if err != nil {
		return c.fail("submit", err)
	}
	if err := uploadWorkingDir(ctx, cl, req); err != nil {
		return c.fail("submit", err)
	}
	fmt.Fprintf(c.stdout, "Job submission server address: %s\n\n", cl.BaseURL())
	resp, err := cl.SubmitJob(ctx, req)
	if err != nil {
		return c.fail("submit", err)
	}
	id := resp.SubmissionID
	bar := strings.Repeat("-", 55)
	fmt.Fprintf(c.stdout, "%s\nJob '%s' submitted successfully\n%s\n\n", bar, id, bar)
	fmt.Fprintf(c.stdout, "Next steps\n  Query the logs of the job:\n    ray job logs %s\n  Query the status of the job:\n    ray job status %s\n  Request the job to be stopped:\n    ray job stop %s\n\n", id, id, id)
	if p.bool("no-wait") {
		return 0
	}
	fmt.Fprintln(c.stdout, "Tailing logs until the job exits (disable with --no-wait):")
	if err := cl.TailJobLogs(ctx, id, func(chunk string) error {
		_, err := io.WriteString(c.stdout, chunk)
		return err
	}); err != nil {
		return c.fail("submit", err)
	}
	job, err := cl.GetJob(ctx, id)
	if err != nil {
		return c.fail("submit", err)
	}
	return c.printFinal(job)
}

// printFinal reports a finished job like Ray's CLI; exit 1 only on FAILED.
func (c *cli) printFinal(job *dashboard.JobDetails) int {
	bar := strings.Repeat("-", 43)
	id := job.SubmissionID
	switch job.Status {
	case dashboard.JobStatusSucceeded:
		fmt.Fprintf(c.stdout, "%s\nJob '%s' succeeded\n%s\n", bar, id, bar)
	case dashboard.JobStatusStopped:
		fmt.Fprintf(c.stdout, "Job '%s' was stopped\n", id)
	case dashboard.JobStatusFailed:
		fmt.Fprintf(c.stdout, "%s\nJob '%s' failed\n%s\n", bar, id, bar)
		fmt.Fprintf(c.stdout, "Status message: %s\n", job.Message)
		return 1
	default:
		fmt.Fprintf(c.stdout, "Status for job '%s': %s\nStatus message: %s\n", id, job.Status, job.Message)
	}
	return 0
}

// uploadWorkingDir zips a local working_dir and uploads it through
// /api/packages, replacing it with the package's gcs:// URI, as Ray's CLI
// does. Remote URIs are left alone.
func uploadWorkingDir(ctx context.Context, cl *dashboard.Client, req *dashboard.JobSubmitRequest) error {
	wd, _ := req.RuntimeEnv["working_dir"].(string)
	if wd == "" || strings.Contains(wd, "://") {
		return nil
	}
	st, err := os.Stat(wd)
	if err != nil {
		return fmt.Errorf("working_dir %q: %w", wd, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("working_dir %q is not a directory", wd)
	}
	data, err := zipDir(wd)
	if err != nil {
		return fmt.Errorf("packaging working_dir %q: %w", wd, err)
	}
	sum := sha1.Sum(data)
	name := "_ray_pkg_" + hex.EncodeToString(sum[:8]) + ".zip"
	if err := cl.UploadPackage(ctx, "gcs", name, data); err != nil {
		return fmt.Errorf("uploading working_dir %q: %w", wd, err)
	}
	req.RuntimeEnv["working_dir"] = "gcs://" + name
	return nil
}

func zipDir(dir string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			_, err := zw.Create(filepath.ToSlash(rel) + "/")
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Method = zip.Deflate
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c *cli) jobStatus(ctx context.Context, p *parsedFlags) int {
	id, err := c.oneID(p)
	if err != nil {
		return c.fail("status", err)
	}
	cl, err := c.client(ctx, p)
	if err != nil {
		return c.fail("status", err)
	}
	job, err := cl.GetJob(ctx, id)
	if err != nil {
		return c.fail("status", err)
	}
	fmt.Fprintf(c.stdout, "Status for job '%s': %s\n", id, job.Status)
	if job.Message != "" {
		fmt.Fprintf(c.stdout, "Status message: %s\n", job.Message)
	}
	return 0
}

func (c *cli) jobLogs(ctx context.Context, p *parsedFlags) int {
	id, err := c.oneID(p)
	if err != nil {
		return c.fail("logs", err)
	}
	cl, err := c.client(ctx, p)
	if err != nil {
		return c.fail("logs", err)
	}
	if !p.bool("follow") {
		logs, err := cl.GetJobLogs(ctx, id)
		if err != nil {
			return c.fail("logs", err)
		}
		fmt.Fprint(c.stdout, logs)
		return 0
	}
	if err := cl.TailJobLogs(ctx, id, func(chunk string) error {
		_, err := io.WriteString(c.stdout, chunk)
		return err
	}); err != nil {
		return c.fail("logs", err)
	}
	job, err := cl.GetJob(ctx, id)
	if err != nil {
		return c.fail("logs", err)
	}
	// Following logs succeeds whatever the job's outcome.
	c.printFinal(job)
	return 0
}

func (c *cli) jobStop(ctx context.Context, p *parsedFlags) int {
	id, err := c.oneID(p)
	if err != nil {
		return c.fail("stop", err)
	}
	cl, err := c.client(ctx, p)
	if err != nil {
		return c.fail("stop", err)
	}
	fmt.Fprintf(c.stdout, "Attempting to stop job '%s'\n", id)
	if _, err := cl.StopJob(ctx, id); err != nil {
		return c.fail("stop", err)
	}
	if p.bool("no-wait") {
		return 0
	}
	fmt.Fprintf(c.stdout, "Waiting for job '%s' to exit (disable with --no-wait):\n", id)
	for {
		job, err := cl.GetJob(ctx, id)
		if err != nil {
			return c.fail("stop", err)
		}
		if job.Status.IsTerminal() {
			if job.Status == dashboard.JobStatusStopped {
				fmt.Fprintf(c.stdout, "Job '%s' was stopped\n", id)
			} else {
				fmt.Fprintf(c.stdout, "Job '%s' has already exited with status %s\n", id, job.Status)
			}
			return 0
		}
		fmt.Fprintf(c.stdout, "Job has not exited yet. Status: %s\n", job.Status)
		time.Sleep(time.Second)
	}
}

func (c *cli) jobList(ctx context.Context, p *parsedFlags) int {
	cl, err := c.client(ctx, p)
	if err != nil {
		return c.fail("list", err)
	}
	jobs, err := cl.ListJobs(ctx)
	if err != nil {
		return c.fail("list", err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBMISSION ID\tSTATUS\tSTART TIME\tEND TIME\tENTRYPOINT")
	for _, j := range jobs {
		end := "-"
		if j.EndTime != nil {
			end = time.UnixMilli(int64(*j.EndTime)).Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.SubmissionID, j.Status, time.UnixMilli(int64(j.StartTime)).Format(time.RFC3339), end, j.Entrypoint)
	}
	_ = tw.Flush()
	return 0
}

func (c *cli) jobDelete(ctx context.Context, p *parsedFlags) int {
	id, err := c.oneID(p)
	if err != nil {
		return c.fail("delete", err)
	}
	cl, err := c.client(ctx, p)
	if err != nil {
		return c.fail("delete", err)
	}
	if _, err := cl.DeleteJob(ctx, id); err != nil {
		return c.fail("delete", err)
	}
	fmt.Fprintf(c.stdout, "Job '%s' deleted successfully\n", id)
	return 0
}
