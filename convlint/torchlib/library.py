"""Shape models of library helpers that model code builds its layers with, kept as data.

timm's ``create_conv2d`` picks its padding through string rules and registries, torchvision's
``Conv2dNormActivation`` chains a conv, a norm and an activation: model code calls them everywhere,
and their own source is too dynamic for the interpreter to follow. Each ``LibraryModel`` says, in
convlint's words and from the library's documented behaviour, what such a helper builds: a short
definition in Python's syntax that the interpreter reads like a helper of the checked code (it is
never imported or run). Nothing here is the library's code.

A model stands for the library only where the installed version (``convlint.source.environment``,
from its ``dist-info``) is within ``checked``, the versions its behaviour was checked against
(``tests/test_library_models.py`` compares each model with the real library); elsewhere the names
stay unknown, and so do the layers built with them. Where a model does not cover a case, it builds
``nn.Module()`` (some module convlint cannot know, which is never None) or, for a value, calls
``_not_modelled()``: the result is unknown.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional, Pattern, Tuple

from ..source.environment import Environment, Version, parse_version


@dataclass(frozen=True)
class Library:
    """A distribution whose helpers are modelled, with the module names model code imports them from."""

    distribution: str
    checked: Tuple[Version, Version]  # [lowest, above the highest) installed version the models hold for
    modules: Tuple[str, ...]
    models: str                       # the definitions, in Python's syntax


TIMM = Library("timm", ((1, 0), (1, 1)), (
    "timm.layers", "timm.layers.padding", "timm.layers.create_conv2d", "timm.layers.conv_bn_act",
    "timm.layers.norm_act", "timm.layers.create_norm_act", "timm.layers.create_act", "timm.layers.create_attn",
    "timm.layers.blur_pool", "timm.layers.drop", "timm.layers.helpers", "timm.layers.classifier",
    "timm.layers.adaptive_avgmax_pool", "timm.layers.create_norm", "timm.layers.linear", "timm.models",
    "timm.models._builder",
), '''
import torch
from torch import nn


def build_model_with_cfg(model_cls, variant, pretrained, pretrained_cfg=None, pretrained_cfg_overlay=None,
                         model_cfg=None, feature_cfg=None, pretrained_strict=True, pretrained_filter_fn=None,
                         cache_dir=None, kwargs_filter=None, features_only=False, **kwargs):
    # the model class built with the keyword arguments (the variant's default configuration can add
    # num_classes and in_chans, which do not change the blocks; weights are loaded aside); a feature
    # extractor wraps the model in another module
    if features_only:
        return nn.Module()
    if model_cfg is not None:
        return model_cls(cfg=model_cfg, **kwargs)
    return model_cls(**kwargs)


class SelectAdaptivePool2d(nn.Module):
    # global pooling to one value per channel ('avg', 'max', 'avgmax' and their 'fast' forms),
    # flattened to (N, C) when asked; no pool_type passes the map through; other kinds not modelled
    def __init__(self, output_size=1, pool_type='fast', flatten=False, input_fmt='NCHW', **_):
        super().__init__()
        self.flat = False
        self.mult = 1
        if not pool_type:
            self.pool = nn.Identity()
        elif output_size == 1 and input_fmt == 'NCHW' and pool_type in (
                'avg', 'max', 'avgmax', 'fast', 'fastavg', 'fastmax', 'fastavgmax'):
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flat = flatten
        else:
            self.pool = nn.Module()
            self.mult = _not_modelled()

    def forward(self, x):
        x = self.pool(x)
        if self.flat:
            x = torch.flatten(x, 1)
        return x

    def feat_mult(self):
        return self.mult


def create_classifier(num_features, num_classes, pool_type='avg', use_conv=False, input_fmt='NCHW',
                      drop_rate=None, **_):
    # (global pool, fc) or (global pool, dropout, fc): the pool flattens unless the fc is a 1x1 conv;
    # no classes makes the fc an identity
    flatten = True
    if use_conv or not pool_type:
        flatten = False
    global_pool = SelectAdaptivePool2d(pool_type=pool_type, flatten=flatten, input_fmt=input_fmt)
    pooled = num_features * global_pool.feat_mult()
    if num_classes <= 0:
        fc = nn.Identity()
    elif use_conv:
        fc = nn.Conv2d(pooled, num_classes, 1)
    else:
        fc = nn.Linear(pooled, num_classes)
    if drop_rate is not None:
        return global_pool, nn.Dropout(drop_rate), fc
    return global_pool, fc


def get_padding(kernel_size, stride=1, dilation=1, **_):
    # the padding that centres a window: (S - 1 + D(K - 1)) // 2, per dim for one int each
    if isinstance(kernel_size, (tuple, list)) or isinstance(stride, (tuple, list)) or \\
            isinstance(dilation, (tuple, list)):
        return _not_modelled()
    return (stride - 1 + dilation * (kernel_size - 1)) // 2


def create_conv2d(in_channels, out_channels, kernel_size, stride=1, padding='', dilation=1, groups=1,
                  depthwise=False, bias=False, **_):
    # one Conv2d; padding '' centres the window; 'same' is static only at stride 1 with an even span
    # (else timm pads at run time); a list of kernels makes a mixed conv, not modelled
    if isinstance(kernel_size, (tuple, list)) or isinstance(stride, (tuple, list)) or \\
            isinstance(dilation, (tuple, list)):
        return nn.Module()
    if depthwise:
        groups = in_channels
    if padding == '':
        padding = get_padding(kernel_size, stride, dilation)
    elif padding == 'valid':
        padding = 0
    elif padding == 'same':
        if stride != 1 or dilation * (kernel_size - 1) % 2 != 0:
            return nn.Module()
        padding = dilation * (kernel_size - 1) // 2
    elif isinstance(padding, str):
        return nn.Module()
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                     dilation=dilation, groups=groups, bias=bias)


class BatchNormAct2d(nn.Module):
    # a BatchNorm2d of num_features, then shape-keeping activation and drop layers
    def __init__(self, num_features, *_, **__):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features)

    def forward(self, x):
        return self.bn(x)


def _ntuple(n):
    # a function making n copies of one value, or a tuple of a sequence's items
    def parse(x):
        if isinstance(x, (tuple, list)):
            return tuple(x)
        return (x,) * n
    return parse


def to_ntuple(n):
    return _ntuple(n)


def to_2tuple(x):
    return _ntuple(2)(x)


def get_norm_layer(norm_layer):
    # the norm class as given (a class or a partial of one); a norm named by a string is not modelled
    if norm_layer is None:
        return None
    if isinstance(norm_layer, str):
        return _not_modelled()
    return norm_layer


def get_norm_act_layer(norm_layer, act_layer=None, **_):
    # the norm-then-activation class of a norm: modelled for batch norm (its first argument is the
    # channel count, as BatchNorm2d's); other norms take other arguments
    if norm_layer is nn.BatchNorm2d or norm_layer is BatchNormAct2d or norm_layer == 'batchnorm' or \\
            norm_layer == 'batchnorm2d':
        return BatchNormAct2d
    return _not_modelled()


class ConvNormAct(nn.Module):
    # create_conv2d, then a norm of out_channels (a norm+act layer, same shape); an anti-aliasing
    # layer takes the stride over from the conv when given, which is not modelled
    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding='', dilation=1, groups=1,
                 bias=False, apply_norm=True, apply_act=True, norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU,
                 aa_layer=None, *_, **__):
        super().__init__()
        if aa_layer is not None and stride > 1:
            self.conv = nn.Module()
        else:
            self.conv = create_conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                      dilation=dilation, groups=groups, bias=bias)
        if apply_norm:
            self.bn = norm_layer(out_channels)
        else:
            self.bn = nn.Identity()

    def forward(self, x):
        return self.bn(self.conv(x))


class ConvBnAct(ConvNormAct):
    pass


class ConvNormActAa(ConvNormAct):
    pass


def create_aa(aa_layer, channels=None, stride=2, enable=True, noop=nn.Identity, **_):
    # no anti-aliasing asked for: the no-op layer (Identity by default, or None)
    if not aa_layer or not enable:
        if noop is None:
            return None
        return noop()
    return nn.Module()


class Linear(nn.Linear):
    # nn.Linear itself (a subclass that only changes how TorchScript sees it)
    pass


class DropPath(nn.Module):
    # drops whole samples at random while training: the shape is kept
    def __init__(self, *_, **__):
        super().__init__()

    def forward(self, x):
        return x


def get_act_layer(name='relu'):
    # an activation class (shape-keeping), or None for none
    if name is None:
        return None
    return nn.ReLU


def create_act_layer(name, inplace=None, **_):
    # an activation layer (shape-keeping), or None for none
    if name is None:
        return None
    return nn.ReLU()


class _ChannelAttention(nn.Module):
    # squeeze-excitation and its kin re-weight a map's channels: the shape is kept
    def __init__(self, channels, *_, **__):
        super().__init__()

    def forward(self, x):
        return x


def create_attn(attn_type, channels, **_):
    # the channel attentions named by a string keep the shape; None for none; others are not modelled
    if attn_type is None or attn_type is False or attn_type == '':
        return None
    if attn_type in ('se', 'ese', 'eca', 'ecam', 'ceca', 'ge', 'gc', 'gca', 'cbam', 'lcbam'):
        return _ChannelAttention(channels)
    return nn.Module()


def make_divisible(v, divisor=8, min_value=None, *other, **others):
    # v rounded to the nearest multiple of divisor, at least min_value (or divisor), raised by one
    # divisor if rounding lost more than 10%: modelled for an even divisor and the default limit (0.9)
    if other or others or divisor % 2 != 0:
        return _not_modelled()
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(v + divisor / 2) // divisor * divisor)
    if 10 * rounded < 9 * v:
        rounded = rounded + divisor
    return rounded
''')

TORCHVISION = Library("torchvision", ((0, 13), (0, 30)), (
    "torchvision.ops", "torchvision.ops.misc", "torchvision.ops.stochastic_depth",
), '''
from torch import nn


class ConvNormActivation(nn.Sequential):
    # a conv (padding (K - 1) // 2 * D when not given, no bias when a norm follows), then the norm of
    # out_channels and the activation, each left out when None
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, groups=1,
                 norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU, dilation=1, inplace=True, bias=None,
                 conv_layer=nn.Conv2d):
        if padding is None:
            if isinstance(kernel_size, int) and isinstance(dilation, int):
                padding = (kernel_size - 1) // 2 * dilation
            else:
                padding = _not_modelled()
        layers = [conv_layer(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation,
                             groups=groups)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer())
        super().__init__(*layers)


class Conv2dNormActivation(ConvNormActivation):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, groups=1,
                 norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU, dilation=1, inplace=True, bias=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, norm_layer,
                         activation_layer, dilation, inplace, bias, nn.Conv2d)


class Conv3dNormActivation(ConvNormActivation):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, groups=1,
                 norm_layer=nn.BatchNorm3d, activation_layer=nn.ReLU, dilation=1, inplace=True, bias=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, norm_layer,
                         activation_layer, dilation, inplace, bias, nn.Conv3d)


class FrozenBatchNorm2d(nn.BatchNorm2d):
    # batch norm with fixed statistics: BatchNorm2d's shapes
    pass


class SqueezeExcitation(nn.Module):
    # re-weights the channels of a map of input_channels: the shape is kept
    def __init__(self, input_channels, squeeze_channels, *_, **__):
        super().__init__()
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)

    def forward(self, x):
        self.fc1(x)
        return x


class StochasticDepth(nn.Module):
    # drops samples or the whole batch at random while training: the shape is kept
    def __init__(self, *_, **__):
        super().__init__()

    def forward(self, x):
        return x
''')

LIBRARIES: Tuple[Library, ...] = (TIMM, TORCHVISION)
_BY_MODULE: Dict[str, Library] = {module: library for library in LIBRARIES for module in library.modules}
MODELLED_MODULES: FrozenSet[str] = frozenset(_BY_MODULE)


def library_of(module: str) -> Optional[Library]:
    """The modelled library a module name belongs to (``timm.layers.padding``: timm)."""
    return _BY_MODULE.get(module)


def models_hold(library: Library, environment: Environment) -> bool:
    """Whether the installed version of ``library`` is one its models were checked against."""
    installed = environment.version(library.distribution)
    if installed is None:
        return False
    low, high = library.checked
    return low <= parse_version(installed) < high


# an import of a modelled library (absolute, or relative from a copy of the library's own files)
LIBRARY_IMPORT: Pattern[bytes] = re.compile(
    rb"^[ \t]*(?:from[ \t]+|import[ \t]+)(?:" + b"|".join(
        re.escape(m.encode()) for m in sorted(MODELLED_MODULES, key=len, reverse=True)) +
    rb"|\.+ops(?:\.misc)?)\b", re.M)
