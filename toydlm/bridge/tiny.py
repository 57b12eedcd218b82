"""Tiny randomly initialised checkpoints with their own offline tokenizer, for tests and demos."""

from __future__ import annotations

from pathlib import Path

from toydlm.errors import UserError

SPECIALS = ["<pad>", "<unk>", "<mask>", "<eos>", "<bos>", "<|user|>", "<|assistant|>"]
_WORDS = (
    "i you we it a an the to of and or in on for with how what why can cannot can't will not sorry "
    "am i'm unable help assist provide share here sure is are be this that write explain describe tell "
    "me make create step steps first then next finally instructions guide list code script story poem "
    "recipe plan way ways people someone something information about please no yes illegal ethically "
    "refuse decline afraid must as ai safe harmful dangerous weapon bomb hack hacking steal money drug "
    "drugs poison kill attack system computer data password email bank account fake news government "
    "software virus malware website social media home water food cook garden music history science"
).split()
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}<|user|> {{ m['content'] }} {% else %}"
    "<|assistant|> {{ m['content'] }} <eos> {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer():
    """A whitespace word-level tokenizer with pad/unk/mask/eos/bos and a chat template."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + sorted(set(_WORDS)))}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
                                  eos_token="<eos>", bos_token="<bos>")
    tok.chat_template = CHAT_TEMPLATE
    tok.padding_side = "left"
    return tok


def write_tiny(kind: str, out: str | Path, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """Write a tiny `ar` (LlamaForCausalLM) or `dlm` (ModernBertForMaskedLM) checkpoint folder."""
    import torch
    import transformers as tf

    if kind not in ("ar", "dlm"):
        raise UserError(f"unknown model kind {kind!r} (valid: ar, dlm)")
    out = Path(out)
    tok = build_tokenizer()
    V = len(tok)
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<pad>", "<eos>", "<bos>", "<mask>")}
    torch.manual_seed(seed)
    if kind == "ar":
        cfg = tf.LlamaConfig(vocab_size=V, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                             num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                             pad_token_id=ids["<pad>"], eos_token_id=ids["<eos>"], bos_token_id=ids["<bos>"],
                             tie_word_embeddings=False)
        model = tf.LlamaForCausalLM(cfg)
    else:
        cfg = tf.ModernBertConfig(vocab_size=V, hidden_size=hidden, intermediate_size=2 * hidden,
                                  num_hidden_layers=layers, num_attention_heads=2, max_position_embeddings=512,
                                  pad_token_id=ids["<pad>"], eos_token_id=ids["<eos>"], bos_token_id=ids["<bos>"],
                                  cls_token_id=ids["<bos>"], sep_token_id=ids["<eos>"], mask_token_id=ids["<mask>"],
                                  reference_compile=False)
        model = tf.ModernBertForMaskedLM(cfg)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out
