package httpapi_test

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/chromedp/chromedp"
)

// jobFieldNames are the JSON names of every field of a job definition.
func jobFieldNames() []string {
	var names []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[procman.Job]()) {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// everyField is a definition with every field a continuous job can have set
// (the user only where ProcMan runs as root, as it may only be set then). It
// depends on the job "db", which must exist.
func everyField(name string) procman.Job {
	j := procman.Job{Name: name, Command: "sleep 100", Type: procman.Continuous, Schedule: "@every 1h",
		Labels:    map[string]string{"tier": "web", "example.com/team": "core"},
		DependsOn: procman.Dependencies{"db": procman.ConditionHealthy}, StartTimeout: procman.Duration(30 * time.Second),
		Dir: os.TempDir(), Env: map[string]string{"A": "1", "B": "two words"}, EnvFile: "app.env",
		StopSignal: "INT", StopTimeout: procman.Duration(3 * time.Second), BackoffInitial: procman.Duration(2 * time.Second),
		BackoffMax: procman.Duration(time.Minute), MinUptime: procman.Duration(5 * time.Second),
		MaxRetries: 3, KeepRuns: 7, MaxLogBytes: 1 << 20, MaxRunLogBytes: 1 << 22,
		Restart: procman.RestartOnFailure, SuccessExitCodes: []int{3, 4}, OnUnhealthy: procman.OnUnhealthyIgnore,
		Health: &procman.HealthCheck{HTTP: "http://localhost:8080/health", Interval: procman.Duration(5 * time.Second), Retries: 2},
		Host:   procman.HostAny}
	if os.Geteuid() == 0 {
		j.User = "nobody"
	}
	return j
}

// TestUIEditChangesOnlyWhatWasEdited: Edit → Save of a job with every field
// set changes the one field edited, keeps those the form shows and those it
// could not (a user, an env_file), and keeps a change made elsewhere while the
// form was open. The form has an input for every field of a job.
func TestUIEditChangesOnlyWhatWasEdited(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	full := everyField("full")
	v := reflect.ValueOf(full)
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if v.Field(i).IsZero() && name != "Overlap" && (name != "User" || os.Geteuid() == 0) {
			t.Fatalf("everyField leaves %s unset: set it, and give the form a line for it", name)
		}
	}
	if err := s.m.Create(ctx, procman.Job{Name: "db", Command: "sleep 100", Type: procman.Continuous}); err != nil {
		t.Fatal(err)
	}
	if err := s.m.Create(ctx, full); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.do("open the dashboard", chromedp.Navigate(s.url+"/ui/"))
	b.wait("the row", fmt.Sprintf(rowState, "full", "stopped"))

	inputs := eval[[]string](b, `[...document.querySelectorAll('#job-form .field[data-field]')].map((e) => e.dataset.field)`)
	if want := jobFieldNames(); !slices.Equal(slices.Sorted(slices.Values(inputs)), slices.Sorted(slices.Values(want))) {
		t.Errorf("the form has inputs for %q, want one for every field of a job: %q", inputs, want)
	}

	b.do("edit full", chromedp.Click(css(`tr[data-job="full"] button[data-action="edit"]`)), chromedp.WaitVisible(css("#f-user")))
	b.wait("the definition in the form", fmt.Sprintf(`document.querySelector('#f-user').value === %q && `+
		`document.querySelector('#f-env_file').value === 'app.env' && document.querySelector('#f-stop_signal').value === 'INT' && `+
		`document.querySelector('#f-env').value === 'A=1\nB=two words' && document.querySelector('#f-backoff_initial').value === '2s' && `+
		`document.querySelector('#f-max_log_bytes').value === '1048576' && !document.querySelector('.field[data-field="user"]').hidden`, full.User))
	// Meanwhile, someone else changes another field.
	if _, err := s.m.Update(ctx, "full", procman.MergePatch([]byte(`{"keep_runs":9}`))); err != nil {
		t.Fatal(err)
	}
	b.do("change the command and save", clearInput("#f-command"), chromedp.SendKeys(css("#f-command"), "sleep 200"),
		chromedp.Click(css("#editor-save")))
	b.wait("the editor closed", `!document.querySelector('#editor').open`)
	want := full
	want.Command, want.KeepRuns = "sleep 200", 9
	if got, err := s.m.Get("full"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after the edit:\n%+v (%v)\nwant\n%+v", got, err, want)
	}

	// Made one_time: the continuous-only field goes, everything else stays
	// (restart on-failure keeps max_retries and the backoff meaningful); the
	// health check, edited as JSON, is replaced whole.
	b.do("edit full again", chromedp.Click(css(`tr[data-job="full"] button[data-action="edit"]`)), chromedp.WaitVisible(css("#f-command")))
	b.wait("the new command in the form", `document.querySelector('#f-command').value === 'sleep 200'`)
	b.do("make it one_time, checked by tcp", chromedp.SetValue(css("#f-type"), "one_time"),
		chromedp.SetValue(css("#f-health"), `{"tcp": "localhost:5432"}`), chromedp.Click(css("#editor-save")))
	b.wait("the editor closed", `!document.querySelector('#editor').open`)
	want.Type, want.MinUptime = procman.OneTime, 0
	want.Health = &procman.HealthCheck{TCP: "localhost:5432"} // the members the form no longer has are gone
	if got, err := s.m.Get("full"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after making it one_time:\n%+v (%v)\nwant\n%+v", got, err, want)
	}
}

// TestUIFormShowsEveryError: every problem the API finds is shown next to its
// field at once, not one per try.
func TestUIFormShowsEveryError(t *testing.T) {
	s := setup(t)
	b := newBrowser(t)
	b.do("open the dashboard", chromedp.Navigate(s.url+"/ui/"))
	b.wait("the empty dashboard", `!document.querySelector('#no-jobs').hidden`)
	b.do("fill in a bad job", chromedp.Click(css("#new-job")), chromedp.WaitVisible(css("#f-name")))
	if typ := eval[string](b, `document.querySelector('#f-type').value`); typ != "one_time" {
		t.Errorf("a new job's type is %q in the form, want one_time (the API's default)", typ)
	}
	b.do("save it",
		chromedp.SendKeys(css("#f-name"), "bad"),
		chromedp.SendKeys(css("#f-command"), "true"),
		chromedp.SendKeys(css("#f-schedule"), "@every 1ms"),
		chromedp.SendKeys(css("#f-stop_timeout"), "2h"),
		chromedp.SendKeys(css("#f-env"), "PROCMAN_JOB=x"),
		chromedp.Click(css("#editor-save")))
	b.wait("all three errors", `document.querySelector('[data-err="schedule"]').textContent.includes('at least 1s') && `+
		`document.querySelector('[data-err="stop_timeout"]').textContent.includes('up to 1h') && `+
		`document.querySelector('[data-err="env"]').textContent.includes('PROCMAN_JOB') && `+
		`document.querySelectorAll('#job-form .field.invalid').length === 3 && document.querySelector('#form-error').textContent === ''`)
}

// TestUICraftedLinkRunsNothing: a link to /ui/#/job/victim%2Fstop must not
// stop the job "victim", neither through the page nor through the API.
func TestUICraftedLinkRunsNothing(t *testing.T) {
	s := setup(t)
	s.create(t, sleeperJob("victim"))
	s.control(t, "GET", "victim", "start")
	b := newBrowser(t)
	for _, hash := range []string{"#/job/victim%2Fstop", "#/job/victim%2frestart", "#/job/%2E%2E%2Fjob%2Fvictim%2Fstop", "#/job/victim%2F"} {
		b.do("follow "+hash, chromedp.Navigate(s.url+"/ui/"+hash))
		b.wait("no such job", `document.querySelector('#jv-error').textContent.startsWith('No job named')`)
	}
	// The API itself refuses the encoded path, whoever sends it.
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	code, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('/job/victim%2Fstop', {method: 'POST'}).then((r) => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if code != 404 {
		t.Errorf("POST /job/victim%%2Fstop from the page: %d, want 404", code)
	}
	if st := s.control(t, "GET", "victim", "state"); st.State != procman.StateRunning || st.Restarts != 0 {
		t.Errorf("victim after the crafted links: %+v, want still running", st)
	}
}

// TestUIOnAPhone: on a phone's screen the job list fits: nothing scrolls
// sideways and every button of every row can be pressed.
func TestUIOnAPhone(t *testing.T) {
	s := setup(t)
	for _, j := range []procman.Job{
		{Name: "a-service-with-a-rather-long-name", Command: "while true; do echo serving on port 8080; sleep 5; done", Type: procman.Continuous},
		{Name: "backup", Command: "tar czf /tmp/backup.tgz /srv", Type: procman.OneTime, Schedule: "0 3 * * *"},
	} {
		s.create(t, j)
	}
	s.control(t, "GET", "a-service-with-a-rather-long-name", "start")
	b := newBrowser(t)
	b.do("a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(s.url+"/ui/"))
	b.wait("the rows", fmt.Sprintf(rowState, "a-service-with-a-rather-long-name", "running")+` && `+fmt.Sprintf(rowState, "backup", "stopped"))
	b.wait("a layout that fits", `document.documentElement.scrollWidth <= innerWidth && `+
		`[...document.querySelectorAll('.scroll')].every((e) => e.scrollWidth <= e.clientWidth) && `+
		`[...document.querySelectorAll('#jobs button[data-action]')].every((e) => { const r = e.getBoundingClientRect(); `+
		`return r.width > 0 && r.left >= 0 && r.right <= innerWidth; })`)
	if n := eval[int](b, `document.querySelectorAll('#jobs button[data-action]').length`); n != 10 {
		t.Errorf("%d buttons, want 5 for each of the 2 jobs", n)
	}
}

// TestUIShowsHowARunWentWrong: exited (2) does not look like exited (0), and a
// run that failed to start shows why instead of an empty output.
func TestUIShowsHowARunWentWrong(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	for _, j := range []procman.Job{
		{Name: "ok", Command: "exit 0", Type: procman.OneTime},
		{Name: "bad", Command: "exit 2", Type: procman.OneTime},
		{Name: "nodir", Command: "true", Type: procman.OneTime, Dir: "/nonexistent/procman-test"},
	} {
		s.create(t, j)
		s.m.Start(ctx, j.Name) // nodir's start fails: that is the point
	}
	for _, name := range []string{"ok", "bad"} {
		if _, err := s.m.WaitFor(ctx, name, procman.StateExited); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t)
	b.do("open the dashboard", chromedp.Navigate(s.url+"/ui/"))
	b.wait("the exits", fmt.Sprintf(row+`?.querySelector('.outcome')?.textContent === 'exited (0)' && `, "ok")+
		fmt.Sprintf(row+`?.querySelector('.outcome')?.textContent === 'exited (2)'`, "bad"))
	color := func(name, sel string) string {
		return eval[string](b, fmt.Sprintf(`getComputedStyle(`+row+`.querySelector(%q)).color`, name, sel))
	}
	if ok, bad := color("ok", ".outcome"), color("bad", ".outcome"); ok == bad {
		t.Errorf("exited (0) and exited (2) are both %s", ok)
	}
	if ok, bad := color("ok", ".state"), color("bad", ".state"); ok == bad {
		t.Errorf("the states of a job that exited 0 and one that exited 2 are both %s", ok)
	}

	b.do("open nodir's page", chromedp.Navigate(s.url+"/ui/#/job/nodir"))
	b.wait("the reason in the output box", logText+`.includes('not a usable directory') && `+
		`document.querySelector('#log-title').textContent.includes('failed_to_start')`)
}
