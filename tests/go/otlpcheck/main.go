// Command otlpcheck is an OTLP/HTTP profiles receiver for tests/push_otlp.rs: it
// decodes every request with the OpenTelemetry Collector's own unmarshaler
// (go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp, what the Collector's OTLP
// receiver uses), checks that every index points into the dictionary, and prints one
// JSON summary per request on stdout. The first line is "listening ADDRESS".
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
)

type profileSummary struct {
	Type       string           `json:"type"`
	Unit       string           `json:"unit"`
	PeriodType string           `json:"period_type"`
	Samples    int              `json:"samples"`
	Total      int64            `json:"total"`
	Self       map[string]int64 `json:"self"`
	Attributes []string         `json:"attribute_keys"`
	TimeNanos  uint64           `json:"time_unix_nano"`
	Duration   uint64           `json:"duration_nano"`
}

type summary struct {
	Error    string            `json:"error,omitempty"`
	Resource map[string]string `json:"resource"`
	Scope    string            `json:"scope"`
	Profiles []profileSummary  `json:"profiles"`
}

func check(body []byte, version []string) (s summary) {
	if err := pprofileotlp.ValidateDevelopmentVersion(version); err != nil {
		s.Error = err.Error()
		return
	}
	req := pprofileotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		s.Error = "unmarshal: " + err.Error()
		return
	}
	pd := req.Profiles()
	dict := pd.Dictionary()
	strs := dict.StringTable()
	str := func(i int32) string {
		if i < 0 || int(i) >= strs.Len() {
			panic(fmt.Sprintf("string index %d out of %d", i, strs.Len()))
		}
		return strs.At(int(i))
	}
	defer func() {
		if r := recover(); r != nil {
			s.Error = fmt.Sprint(r)
		}
	}()
	if strs.Len() == 0 || strs.At(0) != "" {
		panic("string_table[0] must be the empty string")
	}
	s.Resource = map[string]string{}
	for i := 0; i < pd.ResourceProfiles().Len(); i++ {
		rp := pd.ResourceProfiles().At(i)
		rp.Resource().Attributes().Range(func(k string, v pcommon.Value) bool {
			s.Resource[k] = v.AsString()
			return true
		})
		for j := 0; j < rp.ScopeProfiles().Len(); j++ {
			sp := rp.ScopeProfiles().At(j)
			s.Scope = sp.Scope().Name()
			for k := 0; k < sp.Profiles().Len(); k++ {
				s.Profiles = append(s.Profiles, summarize(sp.Profiles().At(k), dict, str))
			}
		}
	}
	return
}

func summarize(p pprofile.Profile, dict pprofile.ProfilesDictionary, str func(int32) string) profileSummary {
	out := profileSummary{
		Type:       str(p.SampleType().TypeStrindex()),
		Unit:       str(p.SampleType().UnitStrindex()),
		PeriodType: str(p.PeriodType().TypeStrindex()),
		Self:       map[string]int64{},
		TimeNanos:  uint64(p.Time()),
		Duration:   p.DurationNano(),
	}
	keys := map[string]bool{}
	for i := 0; i < p.Samples().Len(); i++ {
		smp := p.Samples().At(i)
		if smp.Values().Len() != 1 {
			panic(fmt.Sprintf("sample %d has %d values for one sample type", i, smp.Values().Len()))
		}
		v := smp.Values().At(0)
		out.Samples++
		out.Total += v
		// Index 0 is the table's zero value, the empty stack (a thread whose stack could
		// not be read has one), which the spec allows.
		si := int(smp.StackIndex())
		if si < 0 || si >= dict.StackTable().Len() {
			panic(fmt.Sprintf("stack index %d out of %d", si, dict.StackTable().Len()))
		}
		locs := dict.StackTable().At(si).LocationIndices()
		for l := 0; l < locs.Len(); l++ {
			li := int(locs.At(l))
			if li <= 0 || li >= dict.LocationTable().Len() {
				panic(fmt.Sprintf("location index %d out of %d", li, dict.LocationTable().Len()))
			}
			loc := dict.LocationTable().At(li)
			if mi := int(loc.MappingIndex()); mi < 0 || mi >= dict.MappingTable().Len() {
				panic(fmt.Sprintf("mapping index %d out of %d", mi, dict.MappingTable().Len()))
			}
			for n := 0; n < loc.Lines().Len(); n++ {
				fi := int(loc.Lines().At(n).FunctionIndex())
				if fi <= 0 || fi >= dict.FunctionTable().Len() {
					panic(fmt.Sprintf("function index %d out of %d", fi, dict.FunctionTable().Len()))
				}
				// The leaf's innermost (first) line is the function with self time.
				if l == 0 && n == 0 {
					out.Self[str(dict.FunctionTable().At(fi).NameStrindex())] += v
				}
			}
		}
		for a := 0; a < smp.AttributeIndices().Len(); a++ {
			ai := int(smp.AttributeIndices().At(a))
			if ai <= 0 || ai >= dict.AttributeTable().Len() {
				panic(fmt.Sprintf("attribute index %d out of %d", ai, dict.AttributeTable().Len()))
			}
			keys[str(dict.AttributeTable().At(ai).KeyStrindex())] = true
		}
	}
	for k := range keys {
		out.Attributes = append(out.Attributes, k)
	}
	return out
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	http.HandleFunc("/v1development/profiles", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s := check(body, r.Header.Values(pprofileotlp.DevelopmentVersionHeader))
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" && s.Error == "" {
			s.Error = "content type " + ct
		}
		mu.Lock()
		_ = enc.Encode(s)
		mu.Unlock()
		if s.Error != "" {
			http.Error(w, s.Error, http.StatusBadRequest)
			return
		}
		resp, _ := pprofileotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	})
	fmt.Fprintln(os.Stderr, http.Serve(ln, nil))
}
