"""The Pool initializer idiom: the initializer sets a module global that each task reads."""

from multiprocessing import Pool

settings: dict[str, int] = {}


def init(scale: int) -> None:
    global settings
    settings = {"scale": scale}


def scaled(x: int) -> int:
    return x * settings["scale"]


if __name__ == "__main__":
    with Pool(2, initializer=init, initargs=(10,)) as pool:
        print(pool.map(scaled, range(5)))
        print(pool.apply(scaled, (7,)))
