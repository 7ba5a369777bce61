package admin

import (
	"net/http"
	"time"

	"github.com/meridian-gslb/meridian/internal/adminhttp"
	"github.com/meridian-gslb/meridian/zones/dnssec"
)

// signerSource is a Source that signs zones: the DNS node is one.
type signerSource interface {
	Signers() map[string]*dnssec.Signer
}

// zoneInfo is a zone of GET /api/v1/zones.
type zoneInfo struct {
	Name    string      `json:"name"`
	Serial  uint32      `json:"serial"`
	Records int         `json:"records"`
	DNSSEC  *dnssecInfo `json:"dnssec,omitempty"` // absent for an unsigned zone
}

// dnssecInfo is a signed zone's keys and signature cache.
type dnssecInfo struct {
	Keys []dnssec.KeyInfo `json:"keys"`
	// CachedRRsets: RRsets whose signatures are cached.
	CachedRRsets int    `json:"cached_rrsets"`
	Made         uint64 `json:"signatures_made"`
	Hits         uint64 `json:"cache_hits"`
	// SoonestExpiry of a signature served; absent while none is cached.
	SoonestExpiry *time.Time `json:"soonest_expiry,omitempty"`
}

// zoneList serves GET /api/v1/zones: each zone's serial and size, and
// for a signed zone its keys and signature cache.
func (s *Server) zoneList(w http.ResponseWriter, _ *http.Request) {
	var signers map[string]*dnssec.Signer
	if ss, ok := s.src.(signerSource); ok {
		signers = ss.Signers()
	}
	out := []zoneInfo{}
	for _, z := range s.src.Zones().Zones() {
		zi := zoneInfo{Name: z.Origin(), Serial: z.Serial(), Records: z.Records()}
		if sg := signers[z.Origin()]; sg != nil {
			st := sg.Stats()
			zi.DNSSEC = &dnssecInfo{Keys: sg.KeyInfos(), CachedRRsets: st.Cached, Made: st.Made, Hits: st.Hits}
			if !st.Soonest.IsZero() {
				soonest := st.Soonest.UTC()
				zi.DNSSEC.SoonestExpiry = &soonest
			}
		}
		out = append(out, zi)
	}
	adminhttp.WriteJSON(w, http.StatusOK, out)
}
