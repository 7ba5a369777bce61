package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/meridian-gslb/meridian/gslb/admin"
)

// printRegionLoads writes the forwarders' load reports and the pools'
// shares, when some region has them.
func printRegionLoads(w io.Writer, regions []admin.Region) {
	shown := false
	for _, r := range regions {
		shown = shown || r.Load != nil
	}
	if !shown {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tFORWARDER\tLISTENER\tLOAD\tTARGET\tMAX\tACTIVE\tP99\tBACKENDS\tHEARD")
	for _, r := range regions {
		if r.Load == nil {
			continue
		}
		for _, l := range r.Load.Reports {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.4g %s\t%.4g\t%.4g\t%.0f\t%.1fms\t%d/%d\t%.1fs ago\n", r.Name, l.Forwarder, l.Listener,
				l.Load, l.Unit, l.Target, l.Max, l.Active, l.P99Millis, l.BackendsUp, l.BackendsAll, l.AgeSeconds)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tPOOL (RECORD/TYPE/POOL)\tSHARE\tWHY")
	for _, r := range regions {
		if r.Load == nil {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(r.Load.Pools)) {
			p := r.Load.Pools[key]
			fmt.Fprintf(tw, "%s\t%s\t%.0f%%\t%s\n", r.Name, key, p.Share*100, p.Reason)
		}
	}
	tw.Flush()
}
