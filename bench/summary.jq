# bench/summary.jq: the number formats of the bench scripts' summaries
# (`jq -L bench 'include "summary"; ...'`).

def median: sort | if length == 0 then null
  elif length % 2 == 1 then .[length / 2 | floor]
  else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def si: if . == null then "-" elif . >= 1e6 then "\(. / 1e4 | round / 100) M"
  elif . >= 1e3 then "\(. / 100 | round / 10) k" else "\(. | round)" end;
def ms: if . == null then "-" else "\(. / 1e3 | round / 1e3) ms" end;
def ratio: if . == null then "-" else "\(. * 100 | round / 100)x" end;
