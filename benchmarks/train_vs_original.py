"""The location side of a training step (forward with dropout, backward from a fixed output
gradient, AdamW), the original recipe re-created in float64 (its SH evaluation from
benchmarks/original.py, plain nn.Linear + sin layers) against this package's float32 encoder, measured
interleaved in one process, best of 7 (the pytest-benchmark group train-location-side-L10-*
times the same steps one after the other, with medians).

    .venv/bin/python benchmarks/train_vs_original.py L BATCH plain|fused
"""
import time, math, torch, sys
import satclip
from original import original_analytic_sh  # benchmarks/original.py, beside this script
torch.manual_seed(0)
L, B = int(sys.argv[1]), int(sys.argv[2])
class OrigSiren(torch.nn.Module):
    def __init__(s, din, dout, w0, is_first=False, act=True, dropout=False):
        super().__init__(); s.lin = torch.nn.Linear(din, dout); s.w0=w0; s.act=act; s.dropout=dropout
    def forward(s, x):
        out = s.lin(x)
        if s.dropout: out = torch.nn.functional.dropout(out, training=s.training)
        return torch.sin(s.w0*out) if s.act else out
class OrigNet(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.layers = torch.nn.ModuleList([OrigSiren(L*L,512,30.,dropout=True), OrigSiren(512,512,1.,dropout=True)])
        s.last = OrigSiren(512,256,1.,act=False)
    def forward(s, ll):
        x = original_analytic_sh(ll, L)
        for l in s.layers: x = l(x)
        return s.last(x)
orig = OrigNet().double().train()
opt_o = torch.optim.AdamW(orig.parameters(), lr=1e-4, weight_decay=0.01)
enc = satclip.LocationEncoder(L, 512, 2, 256).float().train()
opt_p = torch.optim.AdamW(enc.parameters(), lr=1e-4, weight_decay=0.01, fused=(sys.argv[3]=="fused"))
g = torch.Generator().manual_seed(0)
ll = torch.stack([torch.rand(B, generator=g)*360-180, torch.rad2deg(torch.asin(torch.rand(B, generator=g)*2-1))], 1).double()
grad64 = torch.randn(B, 256, dtype=torch.float64); grad32 = grad64.float()
def step_o():
    opt_o.zero_grad(set_to_none=True); orig(ll).backward(grad64); opt_o.step()
def step_p():
    opt_p.zero_grad(set_to_none=True); enc(ll.float()).backward(grad32); opt_p.step()
step_o(); step_p()
res = {"o": [], "p": []}
for _ in range(7):
    for k, f in (("o", step_o), ("p", step_p)):
        t0 = time.perf_counter(); f(); res[k].append(time.perf_counter()-t0)
bo, bp = min(res["o"]), min(res["p"])
print(f"L={L} B={B}: original f64 {bo*1e3:.1f} ms, satclip f32 {bp*1e3:.1f} ms, ratio {bo/bp:.2f}")
