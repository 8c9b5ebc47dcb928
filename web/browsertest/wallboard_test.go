package browsertest_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// wallboardRow is a JS expression: the wallboard's row of queue q as
// {waiting, longest, answered, abandoned, voicemails, service}, or null.
func wallboardRow(q string) string {
	return `(() => {
		const r = document.querySelector('#wallboard tr[data-queue=` + jsString(q) + `]');
		if (!r) return null;
		const c = (k) => r.querySelector('td[data-col="' + k + '"]').textContent;
		return {waiting: c('waiting'), longest: c('longest'), answered: c('answered'), abandoned: c('abandoned'), voicemails: c('voicemails'), service: c('service')};
	})()`
}

// The supervisor's queue wallboard lists the queues from GET /api/queues
// and follows queueStatsChanged: a caller waiting (the longest wait
// shown), answered by the agent, a second caller who hangs up while
// waiting (abandoned), the service level.
func TestSupervisorWallboard(t *testing.T) {
	srv := newServer(t, 0)
	sue := srv.token("sue", "Sue Supervisor", calls.RoleSupervisor)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	bob := srv.token("bob", "Bob Caller", calls.RoleCaller)
	carl := srv.token("carl", "Carl Caller", calls.RoleCaller)
	srv.connect(alice)
	srv.do(http.MethodPost, "/api/queues", adminKey, map[string]any{
		"name": "support", "members": []map[string]any{{"agent": "8:acs:alice"}},
		"ringTimeoutSeconds": 600, "serviceLevelSeconds": 60,
	}, http.StatusCreated, nil)

	sup := newTab(t, srv)
	sup.open("/?token=" + sue)
	sup.waitLive()
	sup.waitJS("the queue listed, nobody waiting", `(() => {
		const r = `+wallboardRow("support")+`;
		return r && r.waiting === '0' && r.longest === '–' && r.answered === '0' && r.service.startsWith('100%');
	})()`)

	srv.do(http.MethodPost, "/api/calls", bob, map[string]string{"queue": "support"}, http.StatusCreated, nil)
	sup.waitJS("bob waiting, his wait shown", `(() => {
		const r = `+wallboardRow("support")+`;
		return r && r.waiting === '1' && /^\d+:\d\d$/.test(r.longest);
	})()`)
	sup.screenshot("wallboard")

	srv.accept(alice, "8:acs:bob")
	sup.waitJS("bob answered", `(() => {
		const r = `+wallboardRow("support")+`;
		return r && r.waiting === '0' && r.answered === '1';
	})()`)

	// Alice is busy: carl waits, then hangs up.
	var c calls.Call
	srv.do(http.MethodPost, "/api/calls", carl, map[string]string{"queue": "support"}, http.StatusCreated, &c)
	sup.waitJS("carl waiting", `(() => { const r = `+wallboardRow("support")+`; return r && r.waiting === '1'; })()`)
	srv.do(http.MethodPost, "/api/calls/"+c.ID+"/hangup", carl, nil, http.StatusOK, nil)
	sup.waitJS("carl abandoned, the service level 50%", `(() => {
		const r = `+wallboardRow("support")+`;
		return r && r.waiting === '0' && r.abandoned === '1' && r.voicemails === '0' && r.service.startsWith('50%');
	})()`)
}
