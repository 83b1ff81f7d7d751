"""The compiler passes, in order. Each is a function ``IR -> IR`` (the graph is
updated in place and returned). This list is the one place that orders them."""
from compiler.passes.validate import validate
from compiler.passes.shapes import infer_shapes
from compiler.passes.quantize import quantize
from compiler.passes.messages import assign_message_bits
from compiler.passes.lower import lower_bursts
from compiler.passes.resources import estimate_resources
from compiler.passes.plan import plan_emission

PASSES = [
    validate,             # kinds, keys, ranges, unsupported features
    infer_shapes,         # in_shape per layer, weight/shape consistency
    quantize,             # NetX weight exponent / bits / sign mode, exactness
    assign_message_bits,  # QBLIF bit_length(K), CUBA binary, input graded
    lower_bursts,         # graded payloads or binary thermometer lanes
    estimate_resources,   # neurons, synapses, fan-in/out, Loihi 2 cores
    plan_emission,        # Lava process per layer, per-layer reset offsets
]


def run_passes(g):
    for p in PASSES:
        g = p(g)
    return g
