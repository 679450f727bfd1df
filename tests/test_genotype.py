import json

import pytest
import torch

from engine.space.genotype import Cell, Genotype, GenotypeError
from engine.space.network import build_network, count_macs, count_params
from engine.space.ops import OPS, PARAMETER_FREE, PRIMITIVES

NORMAL = Cell(((("sep_conv_3x3", 0), ("skip_connect", 1)),
               (("dil_conv_3x3", 0), ("max_pool_3x3", 2)),
               (("conv_7x1_1x7", 1), ("sep_conv_5x5", 3)),
               (("sep_conv_7x7", 4), ("avg_pool_3x3", 0))))
REDUCE = Cell(((("skip_connect", 0), ("sep_conv_5x5", 1)),
               (("dil_conv_5x5", 0), ("max_pool_3x3", 1)),
               (("max_pool_3x3", 1), ("avg_pool_3x3", 0)),
               (("sep_conv_3x3", 4), ("conv_7x1_1x7", 0))))
G = Genotype(NORMAL, REDUCE, channels=8, layers=3)


def test_ops_table_is_the_ten_darts_primitives():
    assert set(OPS) == {"none", "skip_connect", "avg_pool_3x3", "max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5",
                        "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7"}
    assert PARAMETER_FREE == {"none", "skip_connect", "avg_pool_3x3", "max_pool_3x3"}


def test_default_concat_is_all_intermediate_nodes():
    assert NORMAL.concat == (2, 3, 4, 5) and G.nodes == 4


def test_json_round_trip():
    text = G.to_json()
    back = Genotype.from_json(text)
    assert back == G and back.hash == G.hash
    assert Genotype.from_dict(json.loads(json.dumps(G.to_dict()))) == G
    # A document carrying its hash (as exports write it) still parses.
    assert Genotype.from_dict({**G.to_dict(), "hash": G.hash}) == G


def test_hash_is_stable_and_content_sensitive():
    assert G.hash == "78bd447696"  # computed once; a change here breaks every stored genotype reference
    assert len(G.hash) == 10
    assert Genotype(NORMAL, REDUCE, channels=16, layers=3).hash != G.hash


def test_ops_used_and_parameter_free_share():
    used = G.ops_used()
    assert sum(used.values()) == 16
    assert used["max_pool_3x3"] == 3 and used["skip_connect"] == 2 and used["avg_pool_3x3"] == 2
    assert G.parameter_free_share() == pytest.approx(7 / 16)


def test_render_lists_every_node():
    text = G.render()
    assert G.hash in text and "C=8" in text and "layers=3" in text
    assert "node 5 = sep_conv_7x7(node 4) + avg_pool_3x3(c_{k-2})" in text
    assert sum(line.startswith("    node ") for line in text.splitlines()) == 8


def _with_normal(edges):
    return Genotype(Cell(edges), REDUCE, channels=8, layers=3)


@pytest.mark.parametrize("genotype, message", [
    (_with_normal(((("sep_conv_9x9", 0), ("skip_connect", 1)),) + NORMAL.edges[1:]),
     'normal cell: node 2: unknown operation "sep_conv_9x9"; valid operations: none, skip_connect'),
    (_with_normal(((("sep_conv_3x3", 0), ("skip_connect", 3)),) + NORMAL.edges[1:]),
     "normal cell: node 2 reads from node 3 (a later node); it may read only from 0..1"),
    (_with_normal(((("sep_conv_3x3", 0), ("skip_connect", 2)),) + NORMAL.edges[1:]),
     "normal cell: node 2 reads from itself"),
    (_with_normal(NORMAL.edges[:1] + ((("sep_conv_3x3", 0),),) + NORMAL.edges[2:]),
     "normal cell: node 3 has 1 input; every intermediate node takes exactly 2"),
    (_with_normal(NORMAL.edges[:1] + ((("sep_conv_3x3", 0), ("skip_connect", 1), ("none", 2)),) + NORMAL.edges[2:]),
     "normal cell: node 3 has 3 inputs; every intermediate node takes exactly 2"),
    (Genotype(NORMAL, REDUCE, channels=0, layers=3), "channels must be a positive integer, got 0"),
    (Genotype(NORMAL, REDUCE, channels=8, layers=-1), "layers must be a positive integer, got -1"),
    (Genotype(NORMAL, REDUCE, channels=8.5, layers=3), "channels must be a positive integer, got 8.5"),
    (Genotype(NORMAL, Cell(REDUCE.edges[:3]), channels=8, layers=3),
     "normal cell has 4 intermediate nodes but reduce cell has 3"),
    (Genotype(NORMAL, Cell(REDUCE.edges, concat=(2, 6)), channels=8, layers=3),
     "reduce cell: concat entry 6 is not an intermediate node (2..5)"),
])
def test_invalid_genotypes_are_rejected_with_clear_messages(genotype, message):
    with pytest.raises(GenotypeError) as info:
        genotype.validate()
    assert message in str(info.value)
    with pytest.raises(GenotypeError):
        build_network(genotype, 2)


@pytest.mark.parametrize("doc, message", [
    ({"normal": NORMAL.to_dict(), "channels": 8, "layers": 3}, "missing key(s): reduce"),
    ({**G.to_dict(), "colour": "red"}, "unknown key(s): colour"),
    ({**G.to_dict(), "normal": {"edges": [[["sep_conv_3x3", 0]]]}}, "normal cell: node 2 has 1 input"),
    ([1, 2], "a genotype must be an object"),
])
def test_from_dict_rejects_bad_documents(doc, message):
    with pytest.raises(GenotypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Genotype.from_dict(doc)


def test_from_json_rejects_broken_json():
    with pytest.raises(GenotypeError, match="not valid JSON"):
        Genotype.from_json("{nope")


def test_builder_is_deterministic():
    torch.manual_seed(3)
    a = build_network(G, num_classes=2)
    torch.manual_seed(3)
    b = build_network(G, num_classes=2)
    c = build_network(G, num_classes=2, seed=3)
    d = build_network(G, num_classes=2, seed=4)
    sa, sb, sc, sd = (m.state_dict() for m in (a, b, c, d))
    assert sa.keys() == sb.keys() == sc.keys()
    assert all(torch.equal(sa[k], sb[k]) and torch.equal(sa[k], sc[k]) for k in sa)
    assert any(not torch.equal(sa[k], sd[k]) for k in sa if sa[k].is_floating_point())
    # seed= leaves the global RNG alone
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    build_network(G, 2, seed=9)
    assert torch.equal(torch.rand(1), before)


def test_param_and_mac_counts_are_positive_and_ordered():
    small = Genotype(NORMAL, REDUCE, channels=8, layers=3)
    wide = Genotype(NORMAL, REDUCE, channels=16, layers=3)
    deep = Genotype(NORMAL, REDUCE, channels=8, layers=5)
    pools = Cell(tuple((("max_pool_3x3", 0), ("avg_pool_3x3", 1)) for _ in range(4)))
    cheap = Genotype(pools, pools, channels=8, layers=3)
    models = {k: build_network(g, 2, seed=0) for k, g in {"small": small, "wide": wide, "deep": deep, "cheap": cheap}.items()}
    params = {k: count_params(m) for k, m in models.items()}
    macs = {k: count_macs(m) for k, m in models.items()}
    assert all(v > 0 for v in params.values()) and all(v > 0 for v in macs.values())
    assert params["cheap"] < params["small"] < params["wide"]
    assert params["small"] < params["deep"]
    assert macs["cheap"] < macs["small"] < macs["wide"] and macs["small"] < macs["deep"]
    # MACs scale with the input batch
    assert count_macs(models["small"], (2, 1, 28, 28)) == 2 * macs["small"]


def test_count_macs_of_a_linear_layer_is_exact():
    assert count_macs(torch.nn.Linear(10, 3), (1, 10)) == 30
    conv = torch.nn.Conv2d(2, 4, 3, padding=1)
    assert count_macs(conv, (1, 2, 5, 5)) == 4 * 5 * 5 * 2 * 9
    assert count_params(conv) == 4 * 2 * 9 + 4


def test_primitives_order_matches_ops():
    assert PRIMITIVES == tuple(OPS)
