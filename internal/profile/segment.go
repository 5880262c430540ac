package profile

import (
	"strconv"
	"time"
)

// segmentMembership consumes the segmentMembership value (depth 2).
func (p *parser) segmentMembership() {
	if p.d[p.i] != '{' {
		p.fail(CodeInvalidSegmentMembership, "segmentMembership must be an object holding \"ups\".")
		p.value(2, false)
		return
	}
	var seenUps bool
	p.members(2, modeCount, func(k key) {
		if k.is("ups") {
			seenUps = true
			p.ups()
			return
		}
		p.fail(CodeUnsupportedSegmentNamespace, "Segment namespace "+strconv.Quote(k.String())+" is not supported; only Segmentation Service audiences (ups) are.")
		p.value(3, false)
	})
	if !p.abort && !seenUps {
		p.failAt(keyUps, CodeMissingSegmentMembership, "segmentMembership has no \"ups\"; it needs at least one Segmentation Service audience.")
	}
}

// ups consumes segmentMembership.ups (depth 3).
func (p *parser) ups() {
	if p.d[p.i] != '{' {
		p.fail(CodeInvalidSegmentMembership, "segmentMembership.ups must be an object of audience ID to membership.")
		p.value(3, false)
		return
	}
	n := 0
	p.members(3, modeAudience, func(k key) {
		n++
		if n == p.lim.MaxAudiences+1 {
			saved := p.path
			p.path = p.path[:len(p.path)-1]
			p.fail(CodeTooManyAudiences, "segmentMembership.ups holds more than "+strconv.Itoa(p.lim.MaxAudiences)+" audiences.")
			p.path = saved
		}
		p.membership(k, n <= p.lim.MaxAudiences)
	})
	if !p.abort && n == 0 {
		p.fail(CodeMissingSegmentMembership, "segmentMembership.ups holds no audience; at least one is required.")
	}
}

// membership consumes one audience's membership object (depth 4).
func (p *parser) membership(aud key, keep bool) {
	id := aud.String()
	if id == "" {
		p.fail(CodeInvalidSegmentMembership, "The audience ID is empty.")
		keep = false
	}
	if p.d[p.i] != '{' {
		p.fail(CodeInvalidSegmentMembership, "An audience membership must be an object with status and lastQualificationTime.")
		p.value(4, false)
		return
	}
	var st, lqt key
	var stSeen, stStr, lqtSeen, lqtStr bool
	p.members(4, modeMembership, func(k key) {
		switch {
		case k.is("status"):
			stSeen = true
			if p.d[p.i] == '"' {
				st, stStr = p.str()
				return
			}
		case k.is("lastQualificationTime"):
			lqtSeen = true
			if p.d[p.i] == '"' {
				lqt, lqtStr = p.str()
				return
			}
		}
		p.value(5, false)
	})
	if p.abort {
		return
	}
	var status string
	switch {
	case !stSeen:
		p.failAt(keyStatus, CodeInvalidSegmentStatus, "The audience membership has no status; expected realized, existing or exited.")
	case !stStr:
		p.failAt(keyStatus, CodeInvalidSegmentStatus, "The audience membership status must be a string: realized, existing or exited.")
	case st.is(StatusRealized):
		status = StatusRealized
	case st.is(StatusExisting):
		status = StatusExisting
	case st.is(StatusExited):
		status = StatusExited
	default:
		p.failAt(keyStatus, CodeInvalidSegmentStatus, "The audience membership status "+strconv.Quote(st.String())+" is not one of realized, existing or exited.")
	}
	var t time.Time
	tOK := false
	switch {
	case !lqtSeen:
		p.failAt(keyLQT, CodeInvalidQualificationTime, "The audience membership has no lastQualificationTime; expected an RFC 3339 date-time.")
	case !lqtStr:
		p.failAt(keyLQT, CodeInvalidQualificationTime, "lastQualificationTime must be an RFC 3339 date-time string.")
	default:
		var err error
		if t, err = time.Parse(time.RFC3339, lqt.String()); err != nil {
			p.failAt(keyLQT, CodeInvalidQualificationTime, "lastQualificationTime "+strconv.Quote(lqt.String())+" is not an RFC 3339 date-time such as 2023-09-05T10:43:55.602687Z.")
		} else {
			tOK = true
		}
	}
	if keep && status != "" && tOK {
		if p.mships == nil {
			p.mships = make([]Membership, 0, 4)
		}
		p.mships = append(p.mships, Membership{AudienceID: id, Status: status, LastQualificationTime: t})
	}
}
