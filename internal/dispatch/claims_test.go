package dispatch

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

// Claim tests: only the node holding a destination's claim sends to it. The memStore holds claims
// as store.DB does (free, expired or one's own can be taken), and can refuse or fail claims.

// claimGuard checks, at every send, that the sending node holds the destination's claim.
type claimGuard struct {
	st *memStore
	mu sync.Mutex
	// wrong lists sends made without the claim.
	wrong []string
}

func (g *claimGuard) script(node string, rep func() reply) func(id string, n, all int) reply {
	return func(id string, _, _ int) reply {
		if h := g.st.holder(rigDest); h != node {
			g.mu.Lock()
			g.wrong = append(g.wrong, fmt.Sprintf("%s sent %s while the claim was held by %q", node, id, h))
			g.mu.Unlock()
		}
		return rep()
	}
}

func (g *claimGuard) check(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range g.wrong {
		t.Error(w)
	}
}

// Another node holds the destination (and the claim first fails outright): nothing is sent, the
// jobs are parked and committed; once the claim is won they go out, each profile in order.
func TestNothingIsSentUntilTheClaimIsWon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		g := &claimGuard{st: st}
		failUntil, heldUntil := time.Now().Add(5*time.Second), time.Now().Add(20*time.Second)
		st.claims[rigDest] = claimRow{node: "node-other", until: heldUntil}
		st.setFault(func(c storeCall) storeFault {
			if c.op == opClaim && time.Now().Before(failUntil) {
				return storeFault{err: errStoreDown}
			}
			return storeFault{}
		})
		opts := Options{DrainInterval: drainTick, ClaimTTL: 3 * time.Second, IdleRelease: time.Hour}
		r := startNode(t, st, "node-timing", opts, fastRate, g.script("node-timing", ok200))
		defer r.close()
		var ids []string
		for i := range 6 {
			ids = append(ids, r.offer(fmt.Sprintf("p%d", i%2)))
		}
		advance(time.Until(heldUntil) - time.Second)
		if n := r.snd.count(); n != 0 {
			t.Fatalf("%d sends while another node held the claim", n)
		}
		for _, id := range ids {
			if _, ok := r.st.parkedRow(id); !ok {
				t.Fatalf("%s is not parked while another node holds the claim", id)
			}
		}
		if off := r.src.committedOffset(); off != int64(len(ids)) {
			t.Fatalf("committed offset %d, want %d (parked jobs are finished)", off, len(ids))
		}
		advance(time.Minute)
		assertLedger(t, r, ids, int64(len(ids)))
		for p := range 2 { // ids[i] belongs to profile p(i%2)
			var order, want []string
			for i, id := range ids {
				if i%2 == p {
					want = append(want, id)
				}
			}
			for _, s := range r.snd.all() {
				if slices.Contains(want, s.id) {
					order = append(order, s.id)
				}
			}
			if !slices.Equal(order, want) {
				t.Errorf("profile p%d: sent as %v, want %v", p, order, want)
			}
		}
		g.check(t)
	})
}

// Two nodes share one store. Node A serves the destination; then its jobs go to node B (a
// rebalance): B parks them, A (the claim holder) drains them and, idle, releases its claim. B
// takes the claim for its next job, then stops without releasing (its release fails), and A
// takes over once B's claim expired. One node sends
// at a time, every delivery goes out once, and a profile's deliveries in order across the nodes.
func TestClaimMovesBetweenNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		g := &claimGuard{st: st}
		opts := Options{DrainInterval: drainTick, ClaimTTL: 3 * time.Second, IdleRelease: 5 * time.Second}
		slow := func() reply { rep := ok200(); rep.latency = 10 * time.Millisecond; return rep }
		a := startNode(t, st, "node-a", opts, fastRate, g.script("node-a", slow))
		a.prefix = "dlv_a1_"
		b := startNode(t, st, "node-b", opts, fastRate, g.script("node-b", slow))
		b.prefix = "dlv_b_"
		defer a.close()
		defer b.close()

		var ids []string
		for range 5 {
			ids = append(ids, a.offer("p"))
		}
		advance(time.Second)
		for range 5 {
			ids = append(ids, b.offer("p"))
		}
		advance(time.Second)
		if n := b.snd.count(); n != 0 {
			t.Fatalf("node B sent %d while node A held the claim", n)
		}
		// A, the claim holder, drains what B parked; then, idle, it releases the claim.
		advance(opts.IdleRelease + 3*opts.ClaimTTL)
		if n := a.snd.count() + b.snd.count(); n != 10 {
			t.Fatalf("%d of the 10 jobs sent", n)
		}
		if h := st.holder(rigDest); h == "node-a" {
			t.Fatal("idle node A still holds the claim")
		}

		// B serves the destination again, then stops without releasing: A waits for B's claim
		// to expire.
		ids = append(ids, b.offer("p"))
		advance(time.Second)
		if h := st.holder(rigDest); h != "node-b" {
			t.Fatalf("the claim is held by %q while B sends, want node-b", h)
		}
		st.setFault(func(c storeCall) storeFault {
			if c.op == opRelease && c.node == "node-b" {
				return storeFault{err: errStoreDown}
			}
			return storeFault{}
		})
		b.close()
		if h := st.holder(rigDest); h != "node-b" {
			t.Fatalf("after B stopped without releasing the claim is held by %q, want node-b until it expires", h)
		}
		stopped := time.Now()
		a.prefix = "dlv_a2_"
		for range 3 {
			ids = append(ids, a.offer("p"))
		}
		advance(time.Minute)

		all := append(a.snd.all(), b.snd.all()...)
		sort.SliceStable(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
		seen := map[string]int{}
		var order []string
		for _, s := range all {
			seen[s.id]++
			order = append(order, s.id)
			if s.id[:7] == "dlv_a2_" && s.at.Before(stopped.Add(opts.ClaimTTL-time.Second)) {
				t.Errorf("%s went out at +%v after B stopped, before B's claim could expire", s.id, s.at.Sub(stopped))
			}
		}
		for _, id := range ids {
			if seen[id] != 1 {
				t.Errorf("%s sent %d times, want once", id, seen[id])
			}
			if s := st.statusOf(id); s != delivery.Delivered {
				t.Errorf("%s: status %q, want delivered", id, s)
			}
		}
		want := append([]string(nil), ids...)
		if fmt.Sprint(order) != fmt.Sprint(want) {
			t.Errorf("sent in the order %v, want %v", order, want)
		}
		g.check(t)
	})
}

// twoNodes starts node-a and node-b (delivery IDs dlv_a_…, dlv_b_…) on one store, each answered
// 200 and checked by the returned guard to send only while it holds the claim. The caller
// defers a.close() and b.close().
func twoNodes(t *testing.T, opts Options) (st *memStore, g *claimGuard, a, b *rig) {
	t.Helper()
	st = newMemStore()
	g = &claimGuard{st: st}
	a = startNode(t, st, "node-a", opts, fastRate, g.script("node-a", ok200))
	a.prefix = "dlv_a_"
	b = startNode(t, st, "node-b", opts, fastRate, g.script("node-b", ok200))
	b.prefix = "dlv_b_"
	return st, g, a, b
}

// sentInOrder is the delivery IDs the rigs sent, every send in the order they went out.
func sentInOrder(rigs ...*rig) []string {
	var all []sendRec
	for _, r := range rigs {
		all = append(all, r.snd.all()...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	out := make([]string, len(all))
	for i, s := range all {
		out[i] = s.id
	}
	return out
}
